"""One run over 2 processes (torchrun, gloo on CPU) against the same run in one process: the
training losses of every logged step agree to float tolerance, and the report is written once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dmlbench.cli import main
from dmlbench.training.distributed import RankSlice

pytestmark = pytest.mark.multiprocess  # deselected by default; .ci/run runs it

REPO = Path(__file__).resolve().parents[2]
# Deterministic train transform and frozen trunk BatchNorm: then the global batch a process pair
# sees is exactly the single process's batch (BatchNorm in train mode would use slice statistics).
TINY = [
    "--reproduce_results",
    str(REPO / "exp_configs" / "demo"),
    "--merge_argparse_when_resuming",
    "--dataset",
    "{DemoShapes: {num_classes: 16, images_per_class: 8}}",
    "--split_manager",
    "{MLRCSplitManager: {num_training_sets: 1, num_training_partitions: 2}}",
    "--transforms~OVERRIDE~",
    "{train: {Resize: {size: 32}}, eval: {Resize: {size: 32}}}",
    "--freeze_trunk_batchnorm",
    "true",
    "--check_untrained_accuracy",
    "false",
    "--num_epochs_train",
    "2",
    "--iterations_per_epoch",
    "10",
    "--save_interval",
    "1",
    "--batch_size",
    "16",
]


def training_losses(experiment: Path) -> list[tuple[int, str, float]]:
    with sqlite3.connect(experiment / "meta" / "records.db") as connection:
        return list(connection.execute("SELECT step, name, value FROM training ORDER BY step, name"))


def test_rank_slices_tile_each_global_batch():
    order = list(range(100, 124))  # 3 global batches of 8
    slices = [list(RankSlice(order, 8, rank, 4)) for rank in range(4)]
    for batch in range(3):
        tiled = [index for rank in range(4) for index in slices[rank][batch]]
        assert tiled == order[8 * batch : 8 * (batch + 1)]


def test_two_processes_match_one(tmp_path):
    datasets, root = tmp_path / "datasets", tmp_path / "logs"
    assert (
        main(
            [
                *TINY,
                "--experiment_name",
                "single",
                "--root_experiment_folder",
                str(root),
                "--dataset_root",
                str(datasets),
            ]
        )
        == 0
    )  # also makes the demo data set
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(REPO / "run.py"),
            *TINY,
            "--experiment_name",
            "ddp",
            "--root_experiment_folder",
            str(root),
            "--dataset_root",
            str(datasets),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    single, ddp = training_losses(root / "single"), training_losses(root / "ddp")
    assert len(single) == len(ddp) > 0
    for (step_a, name_a, value_a), (step_b, name_b, value_b) in zip(single, ddp):
        assert (step_a, name_a) == (step_b, name_b)
        assert value_b == pytest.approx(value_a, rel=1e-4, abs=1e-6), (step_a, name_a)
    report = json.loads((root / "ddp" / "meta" / "report.json").read_text())
    expected = json.loads((root / "single" / "meta" / "report.json").read_text())
    trained, reference = report["results"]["test"]["trained"], expected["results"]["test"]["trained"]
    assert trained["separated"]["mean"] == pytest.approx(reference["separated"]["mean"], abs=1e-3)
    assert sorted(p.name for p in (root / "ddp" / "meta").glob("report.*")) == [
        "report.html",
        "report.json",
        "report.md",
    ]
    assert not list((root / "ddp").rglob("*.tmp"))
    with sqlite3.connect(root / "ddp" / "meta" / "records.db") as connection:  # one writer: no duplicate rows
        rows = connection.execute(
            "SELECT COUNT(*) FROM accuracies WHERE mode = 'fold' AND split = 'test'"
        ).fetchone()
    assert rows[0] == len(reference["separated"]["mean"])
