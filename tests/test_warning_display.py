"""Warnings on the console: one line each, once per process, no source line."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

from dmlbench import warning_display


def test_each_text_once_as_one_line(monkeypatch) -> None:
    monkeypatch.setattr(warning_display, "_shown", set())
    out = io.StringIO()
    for _ in range(3):
        warning_display.show_warning(UserWarning("split_manager: small"), UserWarning, "x.py", 7, out, "code")
    warning_display.show_warning(UserWarning("other"), UserWarning, "x.py", 8, out)
    assert out.getvalue() == "warning: split_manager: small\nwarning: other\n"


def test_installed_display_survives_catch_warnings() -> None:
    code = textwrap.dedent("""
        import warnings
        from dmlbench import warning_display
        warning_display.install()
        def fold(i):
            warnings.warn("validation split is small")
        for i in range(4):
            with warnings.catch_warnings():  # forgets Python's own registry each time
                fold(i)
            fold(i)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stderr == "warning: validation split is small\n"
