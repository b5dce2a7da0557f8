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


# ---------------------------------------------------------------- every writer honours the umask

import ast
from pathlib import Path

import torch

from dmlbench.data.demo import ensure_generated, generation_parameters
from dmlbench.fileio import umask_mode
from dmlbench.records.store import write_csv_atomic
from dmlbench.training.checkpoint import save_atomic

SOURCES = Path(__file__).resolve().parents[1]
#: Calls that create private (0600/0700) entries or set modes, and why each one is fine.
PRIVATE_MODE_CALLS = {
    ("dmlbench/fileio.py", "os.open(folder, os.O_RDONLY)"): "opens a folder to fsync it",
    (
        "dmlbench/fileio.py",
        "os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 438)",
    ): "0o666 less the umask",
    (
        "dmlbench/data/demo.py",
        "tempfile.mkdtemp(dir=root, prefix=_temporary_prefix(folder.name))",
    ): "chmod to umask_mode(0o777) before it is renamed into place",
    ("dmlbench/data/demo.py", "temporary.chmod(umask_mode(511))"): "the umask's mode",
    (
        "dmlbench/writer_lock.py",
        "os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 438)",
    ): "0o666 less the umask",
    ("dmlbench/writer_lock.py", "os.open(path, os.O_RDONLY | os.O_NOFOLLOW)"): "reads the holder",
    (
        "dmlbench/warning_display.py",
        "tempfile.mkstemp(prefix='dmlbench_warnings_', suffix='.txt')",
    ): "private on purpose: the system temp dir, shared by the command's own child processes, removed",
}
RISKY = {"mkstemp", "NamedTemporaryFile", "mkdtemp", "chmod", "fchmod"}


def _risky_calls(path: Path) -> set[str]:
    calls = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in RISKY or ast.unparse(node.func) == "os.open":
                calls.add(ast.unparse(node))
    return calls


def test_no_writer_makes_private_files_unnoticed() -> None:
    found = {
        (str(path.relative_to(SOURCES)), call)
        for path in [*SOURCES.glob("dmlbench/**/*.py"), *SOURCES.glob("plugins/**/*.py")]
        for call in _risky_calls(path)
    }
    assert found == set(PRIVATE_MODE_CALLS), "a new call that may create a 0600/0700 entry: check its mode"


def test_writers_under_a_group_writable_umask(tmp_path) -> None:
    previous = os.umask(0o002)
    try:
        assert umask_mode(0o777) == 0o775
        save_atomic({"w": torch.zeros(2)}, tmp_path / "latest.pt")
        write_csv_atomic(tmp_path / "r.csv", ["a"], [[1]])
        demo = ensure_generated(tmp_path / "data", generation_parameters(2, 2, 8, 0))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "latest.pt").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "r.csv").stat().st_mode) == 0o664
    assert stat.S_IMODE(demo.stat().st_mode) == 0o775
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o664 for p in demo.rglob("*") if p.is_file())
