"""The bad-input catalogue's row type and the builders its rows are written with (the rows: this
folder's ``bad_input_cases_*`` modules; the test that runs them: ``test_bad_input_catalogue.py``).

Placeholders: {tmp} this case's folder, {demo} a shared generated demo data root, {repo} the
repository. Every case fails before any training starts.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    id: str
    expect: str  # a piece of the one error line
    argv: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)
    cli: str = "run"  # run: run.py | data: python -m dmlbench.data
    code: int = 2
    archive: tuple[str, bytes] | None = None  # (file name, bytes) served to `data download CUB200`
    links: dict[str, str] = field(default_factory=dict)  # symbolic link -> its target (relative to {tmp})
    folders: tuple[str, ...] = ()  # empty folders made before the command


def run(id: str, expect: str, *argv: str, files: dict | None = None, **made: Any) -> Case:
    return Case(id, expect, ("--root_experiment_folder", "{tmp}/logs", *argv), files or {}, **made)


NEW = ("--experiment_name", "x", "--dataset_root", "{tmp}/no_data")
DEMO = (
    "--experiment_name",
    "x",
    "--dataset_root",
    "{demo}",
    "--reproduce_results",
    "{repo}/exp_configs/demo",
    "--merge_argparse_when_resuming",
    "--dataset~OVERRIDE~",
    "{DemoShapes: {num_classes: 16, images_per_class: 4}}",
    "--split_manager~APPLY~2",
    "{num_training_partitions: 2, num_training_sets: 2}",
)
SEARCH = (*DEMO, "--loss_funcs~APPLY~3", "{alpha~BAYESIAN~: [1, 4]}", "--bayes_opt_iters", "2")
EXP = ("--reproduce_results", "{tmp}/exp", "--dataset_root", "{tmp}/no_data")


def saved_experiment(general: str = "batch_size: 8\n") -> dict[str, str]:
    """A folder as a run leaves it after its first checkpoint: configs with their sha256 file."""
    digest = hashlib.sha256(general.encode()).hexdigest()
    return {
        "logs/x/configs/config_general.yaml": general,
        "logs/x/configs/command_line.txt": "x\n",
        "logs/x/configs/config_sha256.json": f'{{"config_general": "{digest}"}}\n',
        "logs/x/Test50_50_Partitions4_0/checkpoints/latest.pt": "x",
    }


SAVED = saved_experiment()
MINE = ("--experiment_name", "x", "--dataset_root", "{tmp}/no_data", "--root_config_folder", "{tmp}/cfg")


def tar_bytes(members: list[tuple[str, str, str]]) -> bytes:
    """(name, file|dir|symlink, payload or link target) -> an uncompressed tar archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as bundle:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload.encode())
                bundle.addfile(info, io.BytesIO(payload.encode()))
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                bundle.addfile(info)
            else:
                info.type, info.linkname = tarfile.SYMTYPE, payload
                bundle.addfile(info)
    return buffer.getvalue()


def zip_bytes(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, text in entries.items():
            bundle.writestr(name, text)
    return buffer.getvalue()


GOOD_TAR = tar_bytes([(f"CUB_200_2011/f{i}.txt", "file", "y" * 4000) for i in range(3)])


def data(
    id: str,
    expect: str,
    *argv: str,
    code: int = 2,
    archive: tuple[str, bytes] | None = None,
    files: dict | None = None,
) -> Case:
    return Case(id, expect, argv, files or {}, cli="data", code=code, archive=archive)


def download(id: str, expect: str, archive: tuple[str, bytes], files: dict | None = None) -> Case:
    return data(
        id,
        expect,
        "download",
        "CUB200",
        "--root",
        "{tmp}/data",
        "--no-progress",
        code=1,
        archive=archive,
        files=files,
    )
