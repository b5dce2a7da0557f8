"""A run with DAS, killed mid-training and resumed with ``--resume_training latest``, gives exactly
the uninterrupted run's numbers: the frequency matrix, the banks, their fill counters and DAS's
generator are in the checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dmlbench.cli import main

REPO = Path(__file__).resolve().parents[3]
TINY = [
    "--reproduce_results",
    str(REPO / "exp_configs" / "demo"),
    "--merge_argparse_when_resuming",
    "--dataset",
    "{DemoShapes: {num_classes: 16, images_per_class: 10}}",
    "--split_manager",
    "{MLRCSplitManager: {num_training_sets: 1}}",
    "--iterations_per_epoch",
    "4",
    "--save_interval",
    "1",
    "--batch_size",
    "16",
    "--check_untrained_accuracy",
    "false",
    "--training_plugins",
    "{DAS: {dfs_num_scale: 4, dfs_scale_range: [0.5, 2.0], mts_scale: 0.1, bank_size: 3}}",
]


@pytest.mark.multiprocess
def test_killed_das_run_resumes_to_the_same_result(tmp_path):
    dataset_root = tmp_path / "data"
    command = [
        sys.executable,
        str(REPO / "run.py"),
        *TINY,
        "--experiment_name",
        "das",
        "--root_experiment_folder",
        str(tmp_path / "killed"),
        "--dataset_root",
        str(dataset_root),
        "--num_epochs_train",
        "4",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = None
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        candidates = list((tmp_path / "killed" / "das").glob("*_0/checkpoints/latest.pt"))
        if candidates:
            try:
                saved = torch.load(candidates[0], weights_only=False)
                if saved["state"]["epoch"] >= 2:
                    latest = saved
                    break
            except Exception:  # being replaced right now
                pass
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert latest is not None, "the run finished or failed before it could be killed"
    das_state = latest["plugins"][0]
    assert int(das_state["frequency"].sum()) > 0 and int(das_state["filled"].sum()) > 0
    assert not (tmp_path / "killed" / "das" / "meta" / "report.json").exists()

    assert (
        main(
            [
                "--experiment_name",
                "das",
                "--root_experiment_folder",
                str(tmp_path / "killed"),
                "--dataset_root",
                str(dataset_root),
                "--resume_training",
                "latest",
            ]
        )
        == 0
    )
    resumed = json.loads((tmp_path / "killed" / "das" / "meta" / "report.json").read_text())

    assert (
        main(
            [
                *TINY,
                "--experiment_name",
                "das",
                "--root_experiment_folder",
                str(tmp_path / "straight"),
                "--dataset_root",
                str(dataset_root),
                "--num_epochs_train",
                "4",
            ]
        )
        == 0
    )
    straight = json.loads((tmp_path / "straight" / "das" / "meta" / "report.json").read_text())
    assert resumed["results"]["test"]["trained"] == straight["results"]["test"]["trained"]
    # the test numbers come from the best epoch, which may precede the kill: compare the last epoch's
    # weights and DAS state too, bit for bit
    final = [
        torch.load(next((tmp_path / run / "das").glob("*_0/checkpoints/latest.pt")), weights_only=False)
        for run in ("killed", "straight")
    ]
    assert final[0]["state"]["epoch"] == final[1]["state"]["epoch"] == 4
    for name, weights in final[1]["models"].items():
        for key, value in weights.items():
            assert torch.equal(final[0]["models"][name][key], value), f"{name}.{key}"
    for key, value in final[1]["plugins"][0].items():
        assert torch.equal(final[0]["plugins"][0][key], value), f"DAS {key}"
