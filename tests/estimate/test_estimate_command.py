"""``--estimate`` end to end on a shrunken demo: one line with the total, the work counted by hand,
nothing written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from demo_commands import TINY_RUN

from dmlbench.cli import main


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("datasets")


def test_estimate_counts_the_work_and_writes_nothing(tmp_path, dataset_root, capsys, quiet_progress):
    root = tmp_path / "logs"
    before = set(os.listdir(dataset_root))
    code = main(
        [*TINY_RUN, "--root_experiment_folder", str(root), "--dataset_root", str(dataset_root), "--estimate"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert not root.exists()  # no experiment folder, no lock file
    # the demo data set is generated on first use (as the run would); nothing else appears
    assert {p for p in os.listdir(dataset_root) if p not in before} <= {
        p for p in os.listdir(dataset_root) if p.startswith("dmlbench_demo_shapes_")
    }
    # by hand: 16 classes x 10 images, test = the upper 8 classes; 4 partitions of the lower 8, 2 trained:
    # each fold validates on 2 classes (20 images). 2 folds x 3 epochs x 4 steps = 24 steps; validations
    # per fold: epoch 0, 1, 2, 3 = 4 -> 8 passes; test: 2 folds x (initial + trained) = 4 passes
    assert (
        "work: 1 process(es), 2 fold training(s), 24 steps, 8 validation and 4 test embedding passes" in out
    )
    total = re.findall(r"^estimate: ([\d.]+) (s|min|h|days) in total on cpu$", out, re.MULTILINE)
    assert len(total) == 1 and float(total[0][0]) > 0
    assert "[Test50_50" not in out  # the probe's own fold log is not shown
    assert "one epoch of a fold:" in out and "per validation (every 1)" in out
    assert "early stopping with patience" in out


def test_estimate_of_a_search_counts_trials(tmp_path, dataset_root, capsys, quiet_progress):
    search = [
        "--loss_funcs~OVERRIDE~",
        "{metric_loss: {MultiSimilarityLoss: {alpha~LOG_BAYESIAN~: [0.01, 100], beta: 40, base: 0.5}}}",
        "--bayes_opt_iters",
        "3",
        "--reproductions",
        "2",
    ]
    root = tmp_path / "logs"
    code = main(
        [
            *TINY_RUN,
            *search,
            "--root_experiment_folder",
            str(root),
            "--dataset_root",
            str(dataset_root),
            "--estimate",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and not root.exists()
    # 3 trials + the best trial's test + 2 reproductions = 6 processes; 5 trainings of 2 folds
    assert "work: 6 process(es), 10 fold training(s), 120 steps" in out
    assert "3 trials and 2 reproductions" in out


def test_estimate_of_a_search_without_iterations_is_refused(tmp_path, dataset_root, capsys, quiet_progress):
    code = main(
        [
            *TINY_RUN,
            "--loss_funcs~OVERRIDE~",
            "{metric_loss: {MultiSimilarityLoss: {alpha~LOG_BAYESIAN~: [0.01, 100]}}}",
            "--root_experiment_folder",
            str(tmp_path / "logs"),
            "--dataset_root",
            str(dataset_root),
            "--estimate",
        ]
    )
    assert code == 2
    assert "--bayes_opt_iters" in capsys.readouterr().err
