"""End to end through the command line, on a shrunken demo: the run, its folder, determinism,
kill-and-resume, evaluation of saved models, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from demo_commands import TINY_RUN

from dmlbench.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("datasets")


def run_cli(root: Path, dataset_root: Path, name: str, *extra: str) -> int:
    return main(
        [
            *TINY_RUN,
            "--experiment_name",
            name,
            "--root_experiment_folder",
            str(root),
            "--dataset_root",
            str(dataset_root),
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, dataset_root) -> Path:
    root = tmp_path_factory.mktemp("logs")
    assert run_cli(root, dataset_root, "tiny") == 0
    return root / "tiny"


def trained_numbers(report: dict) -> dict:
    return report["results"]["test"]["trained"]


def test_run_writes_the_experiment_folder(finished_run):
    folder = finished_run
    for category in ("config_general", "config_models", "config_dataset"):
        assert (folder / "configs" / f"{category}.yaml").exists()
    assert (folder / "configs" / "command_line.txt").exists()
    manifest = json.loads((folder / "configs" / "split_manifest.json").read_text())
    assert manifest["sha256"]
    schemes = sorted(p.name for p in folder.iterdir() if (p / "checkpoints").is_dir())
    assert len(schemes) == 2
    for scheme in schemes:
        assert (folder / scheme / "checkpoints" / "best.pt").exists()
        assert (folder / scheme / "checkpoints" / "latest.pt").exists()
        assert any((folder / scheme / "tensorboard").iterdir())
    for name in (
        "report.md",
        "report.json",
        "records.db",
        "csv/accuracies.csv",
        "plots/validation_curves.png",
    ):
        assert (folder / "meta" / name).exists(), name
    assert not list(folder.rglob("*.tmp")), "temp files left behind"


def test_report_statistics_match_fold_records(finished_run):
    report = json.loads((finished_run / "meta" / "report.json").read_text())
    results = report["results"]["test"]
    assert set(results) == {"untrained_trunk", "untrained_trunk_and_embedder", "trained"}
    connection = sqlite3.connect(finished_run / "meta" / "records.db")
    for status, entry in results.items():
        per_fold = entry["separated"]["per_fold"]
        assert len(per_fold) == 2
        for metric in ("precision_at_1", "r_precision", "mean_average_precision_at_r"):
            values = [fold[metric] for fold in per_fold.values()]
            assert entry["separated"]["mean"][metric] == pytest.approx(sum(values) / 2)
            # SEM of two values is |a - b| / 2
            assert entry["separated"]["sem"][metric] == pytest.approx(abs(values[0] - values[1]) / 2)
            assert 0 <= entry["concatenated"][metric] <= 1
            rows = connection.execute(
                "SELECT value FROM accuracies WHERE split='test' AND trained_status=? AND mode='fold' AND metric=?",
                (status, metric),
            ).fetchall()
            assert sorted(r[0] for r in rows) == pytest.approx(sorted(values))
    markdown = (finished_run / "meta" / "report.md").read_text()
    assert "concatenated (2 models)" in markdown and "MAP@R" in markdown


def test_same_command_gives_same_numbers(finished_run, tmp_path, dataset_root):
    assert run_cli(tmp_path, dataset_root, "tiny") == 0
    again = json.loads((tmp_path / "tiny" / "meta" / "report.json").read_text())
    first = json.loads((finished_run / "meta" / "report.json").read_text())
    assert again["results"] == first["results"]
    assert again["config_sha256"] == first["config_sha256"]


def test_fresh_run_into_existing_folder_refuses(finished_run, dataset_root, capsys):
    assert run_cli(finished_run.parent, dataset_root, "tiny") == 2
    assert "already holds an experiment" in capsys.readouterr().err


def test_evaluate_saved_models_reproduces_test_numbers(finished_run, dataset_root):
    first = json.loads((finished_run / "meta" / "report.json").read_text())
    code = main(
        [
            "--experiment_name",
            "tiny",
            "--root_experiment_folder",
            str(finished_run.parent),
            "--dataset_root",
            str(dataset_root),
            "--evaluate",
            "--evaluate_ensemble",
            "--splits_to_eval",
            "[test]",
        ]
    )
    assert code == 0
    evaluated = json.loads((finished_run / "meta" / "report.json").read_text())
    assert trained_numbers(evaluated) == trained_numbers(first)


@pytest.mark.multiprocess
def test_killed_run_resumes_to_the_same_result(finished_run, tmp_path, dataset_root):
    command = [
        sys.executable,
        str(REPO / "run.py"),
        *TINY_RUN,
        "--experiment_name",
        "tiny",
        "--root_experiment_folder",
        str(tmp_path),
        "--dataset_root",
        str(dataset_root),
        "--num_epochs_train",
        "6",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = None
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        candidates = list((tmp_path / "tiny").glob("*_0/checkpoints/latest.pt"))
        if candidates:
            try:
                if torch.load(candidates[0], weights_only=False)["state"]["epoch"] >= 2:
                    latest = candidates[0]
                    break
            except Exception:  # being replaced right now
                pass
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert latest is not None, "the run finished or failed before it could be killed"
    assert not (tmp_path / "tiny" / "meta" / "report.json").exists()

    resume = [
        "--experiment_name",
        "tiny",
        "--root_experiment_folder",
        str(tmp_path),
        "--dataset_root",
        str(dataset_root),
        "--resume_training",
        "latest",
    ]
    assert main(resume) == 0
    resumed = json.loads((tmp_path / "tiny" / "meta" / "report.json").read_text())

    uninterrupted_root = tmp_path / "straight"
    assert (
        main(
            [
                *TINY_RUN,
                "--experiment_name",
                "tiny",
                "--root_experiment_folder",
                str(uninterrupted_root),
                "--dataset_root",
                str(dataset_root),
                "--num_epochs_train",
                "6",
            ]
        )
        == 0
    )
    straight = json.loads((uninterrupted_root / "tiny" / "meta" / "report.json").read_text())
    assert trained_numbers(resumed) == trained_numbers(straight)


@pytest.mark.parametrize(
    "extra, expected",
    [
        (
            ["--loss_funcs~OVERRIDE~", "{metric_loss: {MultiSimilarityLos: {}}}"],
            "nearest: MultiSimilarityLoss",
        ),
        (["--batch_size", "{unclosed: [1, 2"], "--batch_size"),
        (["--optimizers~FROB~", "{}"], "~FROB~"),
        (["--bacth_size", "16"], "did you mean --batch_size"),
        (
            ["--loss_funcs~OVERRIDE~", "{metric_loss: {MultiSimilarityLoss: {alpah: 2}}}"],
            "did you mean alpha",
        ),
        (
            ["--loss_funcs", "{metric_loss: {MultiSimilarityLoss: {alpha~BAYESIAN~: [0.1, 10]}}}"],
            "--bayes_opt_iters",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, dataset_root, capsys, extra, expected):
    code = run_cli(tmp_path, dataset_root, "bad", *extra)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert expected in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "bad").exists()


def test_missing_dataset_names_the_file(tmp_path, capsys):
    code = main(
        [
            "--experiment_name",
            "cub",
            "--root_experiment_folder",
            str(tmp_path),
            "--dataset_root",
            str(tmp_path / "nowhere"),
            "--config_dataset",
            "[default, with_cub200]",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "images.txt" in err and "download" in err
    assert not (tmp_path / "cub").exists()


def test_run_py_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            "--experiment_name",
            "x",
            "--root_experiment_folder",
            str(tmp_path),
            "--dataset_root",
            str(tmp_path / "none"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.startswith("error:")
