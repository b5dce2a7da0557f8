"""Reading an experiment folder's own files defensively: a truncated, corrupt or edited file is
reported as one line naming the file and what to do (:class:`CorruptFileError`), never as a
traceback; temp files left by interrupted atomic writes are removed on the next start.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from dmlbench.errors import CorruptFileError

#: Name of the temp files of :func:`dmlbench.fileio.atomic_write`: ``.<name>.<pid>.<hex>.tmp``.
TEMP_FILE = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")


def corrupt(path: str | Path, problem: str, remedy: str) -> CorruptFileError:
    """The one-line error for an unreadable file: ``<path> is corrupt or truncated (problem): remedy``."""
    problem = " ".join(str(problem).split())[:160]
    return CorruptFileError(f"{path} is corrupt or truncated ({problem}): {remedy}")


def read_json(path: str | Path, remedy: str) -> Any:
    """``json.loads`` of ``path``; a :class:`CorruptFileError` with ``remedy`` if it cannot be parsed."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise corrupt(path, f"{type(error).__name__}: {error}", remedy) from None


def read_json_object(path: str | Path, remedy: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """:func:`read_json` that must give a mapping holding ``required`` keys."""
    value = read_json(path, remedy)
    if not isinstance(value, dict):
        raise corrupt(path, f"expected a JSON object, got {type(value).__name__}", remedy)
    missing = [key for key in required if key not in value]
    if missing:
        raise corrupt(path, f"missing {', '.join(missing)}", remedy)
    return value


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(
    folder: str | Path, recursive: bool = True, older_than_s: float = 0.0
) -> list[Path]:
    """Delete the temp files of interrupted atomic writes under ``folder`` (those whose writing
    process is gone from this machine and that are at least ``older_than_s`` old: a write by a
    process on another machine finishes within that time); -> the removed paths."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for path in folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp"):
        match = TEMP_FILE.match(path.name)
        if not match or not path.is_file() or process_alive(int(match.group(1))):
            continue
        try:
            if now - path.stat().st_mtime >= older_than_s:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # its writer renamed it meanwhile
            pass
    return removed
