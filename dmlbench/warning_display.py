"""Warnings as a user reads them: ``warning: <message>`` on stderr, each message once per process
(a run, or a search whose trials run in its process), without the file name, line number and
source line Python's default display adds. :func:`install` is called by the command-line entry
points; a library or a test importing dmlbench keeps Python's own display."""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import TextIO

_shown: set[tuple[type, str]] = set()


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A ``warnings.showwarning`` replacement: one line, each (category, text) only once."""
    text = str(message)
    if (category, text) in _shown:
        return
    _shown.add((category, text))
    stream = file if file is not None else sys.stderr
    if stream is None:  # pythonw: no stderr
        return
    prefix = "" if text.lower().startswith("warning") else "warning: "
    with contextlib.suppress(OSError):  # a closed pipe must not turn a warning into a failure
        stream.write(f"{prefix}{text}\n")


def install() -> None:
    """Show warnings with :func:`show_warning` from now on, in this process (Python's default
    filter shows a text once per code location, but forgets what it showed whenever the filters
    change, e.g. in every ``warnings.catch_warnings``; the set here does not)."""
    warnings.showwarning = show_warning
