"""End to end on tiny data: the explanation command writes a picture; a resumed run continues the EMA links exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dmlbench.cli import main as run_main
from dmlbench.plugins.avsl.explain import main as explain_main

EXP = Path(__file__).resolve().parents[3] / "exp_configs" / "demo_avsl"


def test_explain_writes_a_png_of_the_query_and_its_neighbours(tmp_path: Path) -> None:
    argv = [
        "--reproduce_results",
        str(EXP),
        "--experiment_name",
        "tiny",
        "--root_experiment_folder",
        str(tmp_path),
        "--dataset_root",
        str(tmp_path / "data"),
        "--merge_argparse_when_resuming",
        "--dataset~OVERRIDE~",
        "{DemoShapes: {num_classes: 16, images_per_class: 4, image_size: 16}}",
        "--models",
        "{trunk~OVERRIDE~: {MultiLevelSmallConvNet: {width: 4, num_blocks: 3, num_levels: 3}}, "
        "embedder~OVERRIDE~: {AVSLEmbedder: {dim: 8}}}",
        "--transforms~OVERRIDE~",
        "{train: {}, eval: {}}",
        "--num_epochs_train",
        "1",
        "--iterations_per_epoch",
        "2",
        "--save_interval",
        "1",
        "--check_untrained_accuracy",
        "false",
        "--device",
        "cpu",
    ]
    assert run_main(argv) == 0
    out = tmp_path / "explain.png"
    code = explain_main(
        [
            "--experiment_name",
            "tiny",
            "--root_experiment_folder",
            str(tmp_path),
            "--dataset_root",
            str(tmp_path / "data"),
            "--query",
            "3",
            "--top",
            "2",
            "--dims",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    picture = np.asarray(Image.open(out))
    assert picture.shape[0] > 100 and picture.shape[1] > 300 and picture.std() > 0
    assert (
        explain_main(
            [
                "--experiment_name",
                "tiny",
                "--root_experiment_folder",
                str(tmp_path),
                "--dataset_root",
                str(tmp_path / "data"),
                "--query",
                "10000",
            ]
        )
        == 2
    )


def test_a_resumed_run_continues_the_ema_links_exactly(tmp_path: Path) -> None:
    """2 epochs in one go == 1 epoch, stop, resume for the 2nd: same links, a, b and weights."""

    def run(name: str, epochs: int, *extra: str) -> int:
        return run_main(
            [
                "--reproduce_results",
                str(EXP),
                "--experiment_name",
                name,
                "--root_experiment_folder",
                str(tmp_path),
                "--dataset_root",
                str(tmp_path / "data"),
                "--merge_argparse_when_resuming",
                "--dataset~OVERRIDE~",
                "{DemoShapes: {num_classes: 16, images_per_class: 4, image_size: 16}}",
                "--models",
                "{trunk~OVERRIDE~: {MultiLevelSmallConvNet: {width: 4, num_blocks: 3, num_levels: 3}}, "
                "embedder~OVERRIDE~: {AVSLEmbedder: {dim: 8}}}",
                "--transforms~OVERRIDE~",
                "{train: {RandomHorizontalFlip: {p: 0.5}}, eval: {}}",
                "--num_epochs_train",
                str(epochs),
                "--iterations_per_epoch",
                "2",
                "--save_interval",
                "1",
                "--patience",
                "10",
                "--check_untrained_accuracy",
                "false",
                "--device",
                "cpu",
                *extra,
            ]
        )

    from dmlbench.training import checkpoint

    assert run("straight", 2) == 0
    assert run("resumed", 1) == 0
    latest = next((tmp_path / "resumed").glob("Test*/checkpoints")) / "latest.pt"
    saved = checkpoint.load(latest)  # as if killed after epoch 1 of 2
    saved["state"].update(finished=False, stop_reason="")
    checkpoint.save_atomic(saved, latest)
    assert run("resumed", 2, "--resume_training", "latest") == 0

    def collector(name: str) -> dict:
        folder = next((tmp_path / name).glob("Test*/checkpoints"))
        return checkpoint.load(folder / "latest.pt")["models"]["collector"]

    straight, resumed = collector("straight"), collector("resumed")
    assert bool(straight["links_initialized"])
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
