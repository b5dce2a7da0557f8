"""The bad-input catalogue: every row is a command a user could type (with the files it needs),
and each must end with exit code 2 (the data CLI: 1 for a data problem, as documented in
``python -m dmlbench.data --help``), exactly one ``error:`` line on stderr, no traceback, and
nothing left behind (no experiment folder, no search lock; a download keeps only its archive).

The rows are in this folder's ``bad_input_cases_*`` modules, by theme; the builders they are
written with and the placeholders ({tmp}, {demo}, {repo}) in ``bad_input_case.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from bad_input_case import REPO, Case
from bad_input_cases_command_line import CASES as COMMAND_LINE
from bad_input_cases_data import CASES as DATA
from bad_input_cases_folders import CASES as FOLDERS
from bad_input_cases_safety import CASES as SAFETY

from dmlbench.cli import main as run_main
from dmlbench.data.__main__ import main as data_main
from dmlbench.data.cub import CUB200
from dmlbench.data.demo import DemoShapes
from dmlbench.data.download import RemoteFile

CASES = [*COMMAND_LINE, *FOLDERS, *SAFETY, *DATA]


def test_the_catalogue_is_large_and_unique() -> None:
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo_data")
    DemoShapes(root, num_classes=16, images_per_class=4)
    return root


def snapshot(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, tmp_path, demo_root, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no pretrained weights anywhere
    monkeypatch.chdir(tmp_path)
    for relative, content in case.files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    for relative in case.folders:
        (tmp_path / relative).mkdir(parents=True)
    for relative, target in case.links.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).symlink_to(tmp_path / target)
    allowed, demo_before = snapshot(tmp_path), snapshot(demo_root)
    contents = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    if case.archive is not None:
        name, payload = case.archive
        served = tmp_path.parent / f"{tmp_path.name}_served_{name}"
        served.write_bytes(payload)
        spec = RemoteFile(name, (served.as_uri(),), sha256=hashlib.sha256(payload).hexdigest())
        monkeypatch.setattr(CUB200, "remote_files", (spec,))
        allowed |= {"data", f"data/{name}"}  # the verified download is kept (it resumes nothing twice)
    places = {"{tmp}": str(tmp_path), "{demo}": str(demo_root), "{repo}": str(REPO)}
    argv = list(case.argv)
    for mark, value in places.items():
        argv = [arg.replace(mark, value) for arg in argv]
    capsys.readouterr()

    code = (run_main if case.cli == "run" else data_main)(argv)

    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == case.code, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert case.expect in lines[0], lines[0]
    left = snapshot(tmp_path) - allowed
    assert not left, f"left behind: {sorted(left)}"
    assert allowed <= snapshot(tmp_path), f"removed: {sorted(allowed - snapshot(tmp_path))}"
    changed = [str(path) for path, data in contents.items() if path.read_bytes() != data]
    assert not changed, f"written into: {changed}"
    assert snapshot(demo_root) == demo_before
