"""What a report says about where it ran: library versions, the device, and the wall time of
each phase (``meta/phase_times.json``: seconds per phase, summed over resumed runs)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from dmlbench.fileio import write_text_atomic

#: Distributions named in the report, by the name they are installed under.
DISTRIBUTIONS = ("torch", "torchvision", "pytorch-metric-learning", "ax-platform", "dmlbench")


def versions() -> dict[str, str]:
    """Installed versions of :data:`DISTRIBUTIONS`, the CUDA version and the GPU name."""
    import torch

    found = {}
    for name in DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    commit = git_commit(Path(__file__).resolve().parents[2])
    if commit:  # run from a clone (or an editable install of one)
        found["dmlbench git commit"] = commit
        if found["dmlbench"] == "not installed":
            found["dmlbench"] = "run from a clone (not installed)"
    found["cuda"] = torch.version.cuda or "none (CPU build)"
    found["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return found


def git_commit(folder: Path) -> str | None:
    """``git rev-parse HEAD`` of the work tree whose top is ``folder`` (", uncommitted changes"
    added when tracked files differ from it); None when ``folder`` is no git work tree's top (an
    installed copy) or git is missing."""
    if not (Path(folder) / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = ", uncommitted changes" if status.returncode == 0 and status.stdout.strip() else ""
    return head.stdout.strip() + dirty


#: Phase times of this process not yet written, per meta folder: they are written when the
#: report is (``phase_times``) or when a phase is interrupted, never by a command that fails.
_pending: dict[Path, dict[str, float]] = {}


def phase_times(meta_dir: Path) -> dict[str, float]:
    """Wall time per phase, summed over every command on this experiment (resumes included);
    writes this process's pending times to ``meta/phase_times.json`` first."""
    _write_pending(meta_dir)
    path = Path(meta_dir) / "phase_times.json"
    return json.loads(path.read_text()) if path.exists() else {}


@contextlib.contextmanager
def timed_phase(meta_dir: Path, name: str) -> Iterator[None]:
    """Add the wall time of the ``with`` block to phase ``name`` when it completes or is
    interrupted (Ctrl-C, SIGTERM: the run continues later, and the time is written at once); a
    command that fails with an error writes none of its times, leaving the folder as it was."""
    start = time.perf_counter()
    try:
        yield
    except KeyboardInterrupt:
        _add_pending(meta_dir, name, time.perf_counter() - start)
        _write_pending(meta_dir)
        raise
    _add_pending(meta_dir, name, time.perf_counter() - start)


def _add_pending(meta_dir: Path, name: str, seconds: float) -> None:
    times = _pending.setdefault(Path(meta_dir), {})
    times[name] = times.get(name, 0.0) + seconds


def _write_pending(meta_dir: Path) -> None:
    pending = _pending.pop(Path(meta_dir), None)
    if not pending:
        return
    path = Path(meta_dir) / "phase_times.json"
    times = json.loads(path.read_text()) if path.exists() else {}
    for name, seconds in pending.items():
        times[name] = times.get(name, 0.0) + seconds
    Path(meta_dir).mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(times, indent=2) + "\n")
