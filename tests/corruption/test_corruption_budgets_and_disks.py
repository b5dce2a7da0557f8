"""Issue 24, budgets and disks: more epochs on a finished run train on; a full disk and a
read-only folder are one line each, and the folder stays resumable."""

from __future__ import annotations

from pathlib import Path

import torch
from corruption_run import copy_of, snapshot

from dmlbench.cli import main


def resume_argv(experiment: Path, dataset_root: Path, *more: str) -> list[str]:
    where = ["--root_experiment_folder", str(experiment.parent), "--dataset_root", str(dataset_root)]
    return ["--experiment_name", experiment.name, *where, "--resume_training", "latest", *more]


def test_more_epochs_on_finished_folds_train_on(finished_run, tmp_path, dataset_root, capsys):
    """Folds that finished at num_epochs_train = 2 train on to 3 when the resumed config says 3:
    every fold's state reaches epoch 3 with one more validation (save_interval 1), the report
    says 3 epochs, and the resume line says so (never a silent exit 0 that trains nothing)."""
    import json

    experiment = copy_of(finished_run, tmp_path)
    capsys.readouterr()
    more = ("--merge_argparse_when_resuming", "--num_epochs_train", "3")
    assert main(resume_argv(experiment, dataset_root, *more)) == 0
    out = capsys.readouterr().out
    assert "training on to num_epochs_train = 3" in out
    for latest_pt in experiment.glob("*/checkpoints/latest.pt"):
        state = torch.load(latest_pt, weights_only=True)["state"]
        assert (state["epoch"], state["finished"]) == (3, True)
        assert [row["epoch"] for row in state["history"]] == [0, 1, 2, 3]
    training = json.loads((experiment / "meta" / "report.json").read_text())["training"]
    assert {info["epochs"] for info in training.values()} == {3}
    assert not list(experiment.rglob("*.tmp"))


def _full_disk_save(obj, file):
    """What torch.save does on a full disk: part of the file, then a RuntimeError whose context
    is the OSError (ENOSPC)."""
    import errno

    file.write(b"partial checkpoint")
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None


def test_disk_full_names_no_space_and_the_path_and_a_resume_leaves_no_temp(
    finished_run, tmp_path, dataset_root, capsys, monkeypatch
):
    experiment = copy_of(finished_run, tmp_path)
    before = snapshot(experiment)
    more = ("--merge_argparse_when_resuming", "--num_epochs_train", "3")
    with monkeypatch.context() as patched:
        patched.setattr(torch, "save", _full_disk_save)
        capsys.readouterr()
        code = main(resume_argv(experiment, dataset_root, *more))
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert "no space left on device writing " in lines[0] and "checkpoints" in lines[0], lines[0]
    assert "Traceback" not in lines[0] and "enforce fail" not in lines[0]
    assert not list(experiment.rglob("*.tmp"))
    after = snapshot(experiment)
    checkpoints = [name for name in before if name.endswith(".pt") and not name.endswith(".prev.pt")]
    assert checkpoints and all(after[name] == before[name] for name in checkpoints)  # the old ones stay whole
    assert main(resume_argv(experiment, dataset_root)) == 0  # space freed: the same resume works
    assert not list(experiment.rglob("*.tmp"))


def test_read_only_folder_says_so_and_suggests_no_resume(
    finished_run, tmp_path, dataset_root, capsys, monkeypatch
):
    import errno

    from dmlbench import writer_lock

    experiment = copy_of(finished_run, tmp_path)

    def read_only(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(writer_lock, "open_lock_file", read_only)
    capsys.readouterr()
    code = main(resume_argv(experiment, dataset_root))
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert "read-only file system: cannot write" in lines[0], lines[0]
    assert "--resume_training" not in lines[0] and "rerun" not in lines[0]
