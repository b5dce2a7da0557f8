"""The atomic-write helper: content, no temp file left, and a file mode that honours the umask."""

from __future__ import annotations

import os
import stat

import pytest

from dmlbench.fileio import replace_atomic, write_text_atomic


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_mode_is_0666_less_the_umask(tmp_path, umask, expected) -> None:
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == expected


def test_replace_and_failure_leave_no_temp_file(tmp_path) -> None:
    target = tmp_path / "state.json"
    replace_atomic(target, lambda temp: temp.write_text("one"))
    assert target.read_text() == "one"

    def broken(temp):
        temp.write_text("half")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError):
        replace_atomic(target, broken)
    assert target.read_text() == "one"
    assert os.listdir(tmp_path) == ["state.json"]
