"""Corruption catalogue: one file of a finished tiny run (or search) is truncated, overwritten,
emptied or edited; resuming, evaluating or rerunning then fails with exit code 2 and exactly one
line on stderr that names the file and says what to do, without a traceback, and the folder is
left as it was (resumable once the remedy is applied: some cases apply it and resume).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from corruption_run import MARKER, SEARCH, copy_of, fold_dir, snapshot

from dmlbench.cli import main


class Exploit:
    """A pickle that would create a file when unpickled with weights_only=False."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


# ------------------------------------------------------------------ corruptions
def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 4)


def empty(path: Path) -> None:
    path.write_bytes(b"")


def json_list(path: Path) -> None:
    path.write_text("[1, 2, 3]\n")


def json_object(path: Path) -> None:
    path.write_text("{}\n")


def edit_yaml(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited by hand\nextra_key_added: 1\n")


def delete(path: Path) -> None:
    path.unlink()


def crafted_pickle(path: Path) -> None:
    with open(path, "wb") as file:
        torch.save({"models": Exploit(path.parent / MARKER)}, file)


# ------------------------------------------------------------------ the catalogue
def latest(e: Path) -> Path:
    return fold_dir(e) / "checkpoints" / "latest.pt"


def latest_alone(e: Path) -> Path:
    (fold_dir(e) / "checkpoints" / "latest.prev.pt").unlink()
    return latest(e)


def best(e: Path) -> Path:
    return fold_dir(e) / "checkpoints" / "best.pt"


def both_latest(corruption: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        corruption(path)
        corruption(path.with_name("latest.prev.pt"))

    return apply


def configs(name: str) -> Callable[[Path], Path]:
    return lambda e: e / "configs" / name


def records(e: Path) -> Path:
    return e / "meta" / "records.db"


def trial_result(e: Path) -> Path:
    return e / "trials" / "trial_0000" / "meta" / "trial_result.json"


def best_test_result(e: Path) -> Path:
    return next(e.glob("trials/trial_*/meta/test_result.json"))


def remove_file(path: Path, experiment: Path) -> None:
    path.unlink()


def move_aside(path: Path, experiment: Path) -> None:
    path.rename(path.with_name(path.name + ".bad"))


def remove_checkpoints(path: Path, experiment: Path) -> None:
    shutil.rmtree(path.parent)


RESUME, EVALUATE, RERUN_SEARCH = "resume", "evaluate", "search"

# (id, which finished folder, file, corruption, command, words the line must hold, remedy to apply then resume)
CASES = [
    ("latest-truncated", "run", latest_alone, truncate, RESUME, ("latest.pt", "delete"), remove_file),
    ("latest-garbage", "run", latest_alone, garbage, RESUME, ("latest.pt", "delete"), None),
    ("latest-empty-evaluate", "run", latest_alone, empty, EVALUATE, ("latest.pt", "delete"), None),
    (
        "latest-and-prev-truncated",
        "run",
        latest,
        both_latest(truncate),
        RESUME,
        ("latest.prev.pt", "delete both"),
        None,
    ),
    (
        "latest-crafted-pickle",
        "run",
        latest,
        both_latest(crafted_pickle),
        RESUME,
        ("latest", "not a plain checkpoint"),
        None,
    ),
    ("best-truncated", "run", best, truncate, EVALUATE, ("best.pt", "resume"), remove_checkpoints),
    ("best-garbage", "run", best, garbage, EVALUATE, ("best.pt", "delete"), None),
    ("best-empty", "run", best, empty, EVALUATE, ("best.pt", "delete"), None),
    (
        "best-crafted-pickle",
        "run",
        best,
        crafted_pickle,
        EVALUATE,
        ("best.pt", "not a plain checkpoint"),
        None,
    ),
    (
        "best-crafted-pickle-resume",
        "run",
        best,
        crafted_pickle,
        RESUME,
        ("best.pt", "not a plain checkpoint"),
        None,
    ),
    ("records-garbage", "run", records, garbage, EVALUATE, ("records.db", "move it aside"), move_aside),
    ("records-truncated", "run", records, truncate, RESUME, ("records.db", "move it aside"), None),
    (
        "manifest-truncated",
        "run",
        configs("split_manifest.json"),
        truncate,
        RESUME,
        ("split_manifest.json", "delete"),
        remove_file,
    ),
    (
        "manifest-garbage",
        "run",
        configs("split_manifest.json"),
        garbage,
        EVALUATE,
        ("split_manifest.json", "delete"),
        None,
    ),
    (
        "manifest-not-an-object",
        "run",
        configs("split_manifest.json"),
        json_list,
        RESUME,
        ("split_manifest.json",),
        None,
    ),
    (
        "config-general-truncated",
        "run",
        configs("config_general.yaml"),
        truncate,
        RESUME,
        ("config_general.yaml", "restore"),
        None,
    ),
    (
        "config-models-garbage",
        "run",
        configs("config_models.yaml"),
        garbage,
        EVALUATE,
        ("config_models.yaml", "restore"),
        None,
    ),
    (
        "config-loss-edited",
        "run",
        configs("config_loss_and_miners.yaml"),
        edit_yaml,
        RESUME,
        ("config_loss_and_miners.yaml", "sha256"),
        None,
    ),
    (
        "config-dataset-empty",
        "run",
        configs("config_dataset.yaml"),
        empty,
        EVALUATE,
        ("config_dataset.yaml",),
        None,
    ),
    (
        "config-optimizers-deleted",
        "run",
        configs("config_optimizers.yaml"),
        delete,
        RESUME,
        ("config_optimizers.yaml", "missing"),
        None,
    ),
    (
        "config-hashes-garbage",
        "run",
        configs("config_sha256.json"),
        garbage,
        RESUME,
        ("config_sha256.json", "delete"),
        remove_file,
    ),
    (
        "search-json-truncated",
        "search",
        lambda e: e / "trials" / "search.json",
        truncate,
        RERUN_SEARCH,
        ("search.json",),
        None,
    ),
    (
        "search-json-garbage",
        "search",
        lambda e: e / "trials" / "search.json",
        garbage,
        RERUN_SEARCH,
        ("search.json",),
        None,
    ),
    (
        "ax-state-truncated",
        "search",
        lambda e: e / "trials" / "ax_state.json",
        truncate,
        RERUN_SEARCH,
        ("ax_state.json", "new --experiment_name"),
        None,
    ),
    (
        "ax-state-not-ax",
        "search",
        lambda e: e / "trials" / "ax_state.json",
        json_object,
        RERUN_SEARCH,
        ("ax_state.json",),
        None,
    ),
    (
        "trial-result-truncated",
        "search",
        trial_result,
        truncate,
        RERUN_SEARCH,
        ("trial_result.json", "delete"),
        remove_file,
    ),
    (
        "trial-result-not-an-object",
        "search",
        trial_result,
        json_list,
        RERUN_SEARCH,
        ("trial_result.json",),
        None,
    ),
    (
        "test-result-garbage",
        "search",
        best_test_result,
        garbage,
        RERUN_SEARCH,
        ("test_result.json", "delete"),
        None,
    ),
]


def command(kind: str, experiment: Path, dataset_root: Path) -> list[str]:
    where = ["--root_experiment_folder", str(experiment.parent), "--dataset_root", str(dataset_root)]
    if kind == RERUN_SEARCH:
        return [*SEARCH, *where]
    base = ["--experiment_name", experiment.name, *where]
    return (
        [*base, "--resume_training", "latest"]
        if kind == RESUME
        else [*base, "--evaluate", "--evaluate_ensemble"]
    )


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_corrupt_file_is_one_line_exit_2(case, request, tmp_path, dataset_root, capsys):
    name, source, locate, corruption, kind, words, remedy = case
    experiment = copy_of(
        request.getfixturevalue("finished_run" if source == "run" else "finished_search"), tmp_path
    )
    target = locate(experiment)
    corruption(target)
    before = snapshot(experiment)
    capsys.readouterr()

    code = main(command(kind, experiment, dataset_root))
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    assert not list(experiment.rglob(MARKER)), "a checkpoint ran code"
    assert snapshot(experiment) == before, "the failed command changed the folder"

    if remedy is not None:  # following the line's advice makes the folder usable again
        remedy(target, experiment)
        assert main(command(RESUME if kind == EVALUATE else kind, experiment, dataset_root)) == 0
