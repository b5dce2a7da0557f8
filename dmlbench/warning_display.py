"""Warnings as a user reads them: ``warning: <message>`` on stderr, each message once per run or
search, without the file name, line number and source line Python's default display adds.
:func:`installed` (around each command-line entry point) replaces ``warnings.formatwarning``;
warnings recorded by ``catch_warnings(record=True)`` (pytest's) are not displayed at all. A search's trial processes (``local_parallel``) share what
was shown through a file named by ``DMLBENCH_WARNINGS_SHOWN`` (:func:`shared_across_processes`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterator

_shown: set[tuple[type, str]] = set()


def format_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """A ``warnings.formatwarning`` replacement: ``warning: <text>`` as one line, and nothing for
    a (category, text) already shown."""
    text = str(message)
    if (category, text) in _shown or _shown_by_another_process(text):
        return ""
    _shown.add((category, text))
    prefix = "" if text.lower().startswith("warning") else "warning: "
    return f"{prefix}{text}\n"


SHARED_ENV = "DMLBENCH_WARNINGS_SHOWN"


def _shown_by_another_process(text: str) -> bool:
    """Whether a process of this search showed ``text`` already (and if not, record it)."""
    path = os.environ.get(SHARED_ENV)
    if not path:
        return False
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    try:
        with open(path, "a+", encoding="ascii") as file:
            file.seek(0)
            if digest in file.read().split():
                return True
            file.write(digest + "\n")
    except OSError:
        pass
    return False


@contextlib.contextmanager
def shared_across_processes() -> Iterator[None]:
    """While the block runs, child processes started from it show each warning text only if no
    other process of the block showed it (a temporary file, removed at the end)."""
    if os.environ.get(SHARED_ENV):  # an outer block already shares
        yield
        return
    handle, path = tempfile.mkstemp(prefix="dmlbench_warnings_", suffix=".txt")
    os.close(handle)
    os.environ[SHARED_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(SHARED_ENV, None)
        with contextlib.suppress(OSError):
            os.remove(path)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Show warnings with :func:`format_warning` while the block (one command) runs, then give
    Python's display back. Python's default filter shows a text once per code location but
    forgets what it showed whenever the filters change (every ``warnings.catch_warnings``); the
    set here does not."""
    _shown.clear()  # once per command (tests run many commands in one process)
    previous = warnings.formatwarning
    warnings.formatwarning = format_warning  # a recording catch_warnings (pytest's) is unaffected
    try:
        yield
    finally:
        warnings.formatwarning = previous
