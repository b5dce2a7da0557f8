"""Warnings on the console: one line each, once per process, no source line."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from dmlbench import warning_display


def test_each_text_once_as_one_line(monkeypatch) -> None:
    monkeypatch.setattr(warning_display, "_shown", set())
    shown = [
        warning_display.format_warning(UserWarning(text), UserWarning, "x.py", 7, "code")
        for text in ["split_manager: small", "split_manager: small", "other", "split_manager: small"]
    ]
    assert shown == ["warning: split_manager: small\n", "", "warning: other\n", ""]


def test_installed_display_survives_catch_warnings() -> None:
    code = textwrap.dedent("""
        import warnings
        from dmlbench import warning_display
        def fold(i):
            warnings.warn("validation split is small")
        with warning_display.installed():
            for i in range(4):
                with warnings.catch_warnings():  # forgets Python's own registry each time
                    fold(i)
                fold(i)
        assert warnings.formatwarning is not warning_display.format_warning  # given back
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stderr == "warning: validation split is small\n"


def test_processes_sharing_a_search_show_a_text_once(monkeypatch) -> None:
    code = textwrap.dedent("""
        import warnings
        from dmlbench import warning_display
        with warning_display.installed():
            warnings.warn("validation split is small")
            warnings.warn("trial-specific")
    """)
    with warning_display.shared_across_processes():
        results = [
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
            for _ in range(3)
        ]
    assert results[0].stderr == "warning: validation split is small\nwarning: trial-specific\n"
    assert [r.stderr for r in results[1:]] == ["", ""]
    assert warning_display.SHARED_ENV not in __import__("os").environ
