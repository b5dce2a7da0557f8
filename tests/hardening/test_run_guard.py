"""Items 2, 4, 5, 6, 7 through the command line on a tiny demo run: plain experiment names,
partial starts, any error before the first checkpoint leaves nothing, after it a resumable folder
and one line; a damaged latest.pt falls back; stale temp files go; --evaluate refuses unfinished
folds and merges results; SIGTERM exits 143 with a complete resume command."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from demo_commands import SMALL_RUN

from dmlbench.cli import main
from dmlbench.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
RUN = SMALL_RUN


@pytest.fixture(autouse=True)
def _quiet(quiet_progress):
    """Every test here reads stderr: the shared quiet_progress fixture (tests/conftest.py)."""


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("datasets")


def where(root: Path, dataset_root: Path) -> list[str]:
    return ["--root_experiment_folder", str(root), "--dataset_root", str(dataset_root)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, dataset_root) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert main([*RUN, "--experiment_name", "tiny", *where(root, dataset_root)]) == 0
    return root / "tiny"


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "logs" / folder.name))


def resume(experiment: Path, dataset_root: Path, *extra: str) -> int:
    return main(
        [
            "--experiment_name",
            experiment.name,
            *where(experiment.parent, dataset_root),
            "--resume_training",
            "latest",
            *extra,
        ]
    )


def trained(experiment: Path) -> dict:
    return json.loads((experiment / "meta" / "report.json").read_text())["results"]["test"]["trained"]


def folds(experiment: Path) -> list[Path]:
    return sorted(p for p in experiment.iterdir() if (p / "checkpoints").is_dir())


# ------------------------------------------------------------------ item 2
@pytest.mark.parametrize("name", ["../escape", "a/b", "/tmp/absolute", "..", ".", " ", "x\\y"])
def test_experiment_name_must_be_a_plain_folder_name(tmp_path, dataset_root, capsys, name):
    root = tmp_path / "root" / "logs"
    code = main([*RUN, "--experiment_name", name, *where(root, dataset_root)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "plain folder name" in err
    assert not list(tmp_path.rglob("*.yaml")) and not (tmp_path / "escape").exists()


# ------------------------------------------------------------------ item 4
@pytest.mark.parametrize(
    "error", [ValueError("bad value"), KeyError("missing"), RuntimeError("CUDA error: boom")]
)
def test_any_error_before_first_checkpoint_leaves_no_folder(
    tmp_path, dataset_root, capsys, monkeypatch, error
):
    def fail(self, epoch):
        raise error

    monkeypatch.setattr(Trainer, "_validate", fail)  # epoch 0 validation comes before the first checkpoint
    code = main([*RUN, "--experiment_name", "x", *where(tmp_path, dataset_root)])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert (
        len(err.splitlines()) == 1
        and err.startswith(f"error: {type(error).__name__}")
        and "Traceback" not in err
    )
    assert "--debug" in err
    assert not (tmp_path / "x").exists()


def test_missing_cuda_device_leaves_no_folder(tmp_path, dataset_root, capsys):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    code = main([*RUN, "--experiment_name", "x", "--device", "cuda:7", *where(tmp_path, dataset_root)])
    err = capsys.readouterr().err.strip()
    assert code in (1, 2) and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_nan_loss_after_first_checkpoint_keeps_a_resumable_folder(
    tmp_path, dataset_root, capsys, monkeypatch
):
    original = Trainer._step

    def nan_in_epoch_2(self, images, labels, frozen):
        if self.state.epoch >= 1:
            raise FloatingPointError("loss became nan at epoch 2; lower the learning rate")
        return original(self, images, labels, frozen)

    monkeypatch.setattr(Trainer, "_step", nan_in_epoch_2)
    root = tmp_path / "elsewhere"
    code = main([*RUN, "--experiment_name", "x", *where(root, dataset_root)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "loss became nan" in err
    hint = shlex.split(err.split("continue with: ", 1)[1].split(" (run with", 1)[0])
    assert hint[:2] == ["python", "run.py"]
    assert hint[hint.index("--dataset_root") + 1] == str(dataset_root)
    assert hint[hint.index("--root_experiment_folder") + 1] == str(root)
    monkeypatch.setattr(Trainer, "_step", original)
    assert main(hint[2:]) == 0  # following the hint finishes the run
    assert (root / "x" / "meta" / "report.json").exists()


def test_debug_flag_shows_the_traceback(tmp_path, dataset_root, monkeypatch):
    def fail(self, epoch):
        raise ValueError("bad value")

    monkeypatch.setattr(Trainer, "_validate", fail)
    monkeypatch.setenv("DMLBENCH_DEBUG", "1")
    with pytest.raises(ValueError, match="bad value"):
        main([*RUN, "--experiment_name", "x", *where(tmp_path, dataset_root)])
    assert not (tmp_path / "x").exists()


def partial_start(finished_run: Path, tmp_path: Path) -> Path:
    """What a kill between the configs and the first checkpoint leaves: configs only."""
    experiment = copy_of(finished_run, tmp_path)
    for fold in folds(experiment):
        shutil.rmtree(fold)
    shutil.rmtree(experiment / "meta")
    (experiment / "configs" / "split_manifest.json").unlink()
    return experiment


def test_partial_start_is_resumed(finished_run, tmp_path, dataset_root):
    experiment = partial_start(finished_run, tmp_path)
    assert resume(experiment, dataset_root) == 0
    assert trained(experiment) == trained(finished_run)


def test_partial_start_is_restarted_by_the_original_command(finished_run, tmp_path, dataset_root, capsys):
    experiment = partial_start(finished_run, tmp_path)
    assert main([*RUN, "--experiment_name", experiment.name, *where(experiment.parent, dataset_root)]) == 0
    assert "starting it again" in capsys.readouterr().err
    assert trained(experiment) == trained(finished_run)


def test_incomplete_configs_are_explained_then_restarted(finished_run, tmp_path, dataset_root, capsys):
    experiment = partial_start(finished_run, tmp_path)
    (experiment / "configs" / "config_sha256.json").unlink()  # killed while writing the configs
    (experiment / "configs" / "config_transforms.yaml").unlink()
    assert resume(experiment, dataset_root) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rerun the original command" in err
    assert main([*RUN, "--experiment_name", experiment.name, *where(experiment.parent, dataset_root)]) == 0


def test_configs_are_written_before_the_split_manifest(tmp_path, dataset_root, monkeypatch):
    import dmlbench.config.experiment_files as files

    seen = {}
    original = files.write_text_atomic

    def spy(path, text):
        if Path(path).name == "split_manifest.json":
            seen["configs_complete"] = files.configs_complete(Path(path).parent.parent)
        return original(path, text)

    monkeypatch.setattr(files, "write_text_atomic", spy)
    assert (
        main([*RUN, "--experiment_name", "x", "--num_epochs_train", "1", *where(tmp_path, dataset_root)]) == 0
    )
    assert seen == {"configs_complete": True}


# ------------------------------------------------------------------ item 5
def test_corrupt_latest_falls_back_to_previous_and_gives_the_same_result(
    finished_run, tmp_path, dataset_root, capsys
):
    experiment = copy_of(finished_run, tmp_path)
    for fold in folds(experiment):
        latest = fold / "checkpoints" / "latest.pt"
        latest.write_bytes(latest.read_bytes()[:100])
    (experiment / "meta" / "report.json").unlink()
    assert resume(experiment, dataset_root) == 0
    assert "latest.prev.pt" in capsys.readouterr().err
    assert trained(experiment) == trained(finished_run)


def test_stale_temp_files_are_removed_on_the_next_start(finished_run, tmp_path, dataset_root):
    experiment = copy_of(finished_run, tmp_path)
    stale = folds(experiment)[0] / "checkpoints" / ".latest.pt.4194399.deadbeef.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert resume(experiment, dataset_root) == 0
    assert not stale.exists()


# ------------------------------------------------------------------ item 6
def unfinish(experiment: Path) -> None:
    latest = folds(experiment)[0] / "checkpoints" / "latest.pt"
    saved = torch.load(latest, weights_only=True)
    saved["state"].update(finished=False, epoch=1, stop_reason="")
    torch.save(saved, latest)


def test_evaluate_refuses_an_unfinished_fold_unless_asked(finished_run, tmp_path, dataset_root, capsys):
    experiment = copy_of(finished_run, tmp_path)
    unfinish(experiment)
    evaluate = ["--experiment_name", experiment.name, *where(experiment.parent, dataset_root), "--evaluate"]
    assert main(evaluate) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1 of 2 epochs" in err and "--evaluate_unfinished" in err
    assert main([*evaluate, "--evaluate_unfinished"]) == 0


def test_evaluate_other_split_keeps_earlier_results(finished_run, tmp_path, dataset_root):
    experiment = copy_of(finished_run, tmp_path)
    before = json.loads((experiment / "meta" / "report.json").read_text())
    time.sleep(1.1)
    assert (
        main(
            [
                "--experiment_name",
                experiment.name,
                *where(experiment.parent, dataset_root),
                "--evaluate",
                "--splits_to_eval",
                "[val]",
            ]
        )
        == 0
    )
    after = json.loads((experiment / "meta" / "report.json").read_text())
    assert after["results"]["test"] == before["results"]["test"]  # the run's test results, ensemble included
    assert after["tested_at"]["test"] == before["tested_at"]["test"]
    assert set(after["results"]["val"]["trained"]) == {"separated"}
    assert (
        after["tested_at"]["val"]["trained"]["separated"]
        > before["tested_at"]["test"]["trained"]["concatenated"]
    )
    assert "val" in (experiment / "meta" / "report.md").read_text()


# ------------------------------------------------------------------ item 7
@pytest.mark.multiprocess
def test_sigterm_checkpoints_exits_143_and_the_hint_resumes(tmp_path, dataset_root, finished_run):
    root = tmp_path / "custom_root"
    command = [
        sys.executable,
        str(REPO / "run.py"),
        *RUN,
        "--experiment_name",
        "tiny",
        *where(root, dataset_root),
        "--num_epochs_train",
        "2",
    ]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if list((root / "tiny").glob("*_0/checkpoints/latest.pt")):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    assert process.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("interrupted; continue with: python run.py")
    hint = shlex.split(last.split("continue with: ", 1)[1])
    assert hint[hint.index("--dataset_root") + 1] == str(dataset_root)
    assert hint[hint.index("--root_experiment_folder") + 1] == str(root)
    assert not list(root.rglob("*.tmp"))
    assert main(hint[2:]) == 0
    assert trained(root / "tiny") == trained(finished_run)


def test_evaluate_unfinished_needs_evaluate(tmp_path, dataset_root, capsys):
    assert (
        main([*RUN, "--experiment_name", "x", "--evaluate_unfinished", *where(tmp_path, dataset_root)]) == 2
    )
    assert "--evaluate_unfinished only applies" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
