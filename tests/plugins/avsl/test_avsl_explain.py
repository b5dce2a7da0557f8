"""The explanation command on a tiny trained AVSL experiment writes a picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dmlbench.cli import main as run_main
from plugins.avsl.explain import main as explain_main

EXP = Path(__file__).resolve().parents[3] / "exp_configs" / "demo_avsl"


def test_explain_writes_a_png_of_the_query_and_its_neighbours(tmp_path: Path) -> None:
    argv = [
        "--reproduce_results", str(EXP), "--experiment_name", "tiny", "--root_experiment_folder", str(tmp_path),
        "--dataset_root", str(tmp_path / "data"), "--merge_argparse_when_resuming",
        "--dataset~OVERRIDE~", "{DemoShapes: {num_classes: 16, images_per_class: 4, image_size: 16}}",
        "--models", "{trunk~OVERRIDE~: {MultiLevelSmallConvNet: {width: 4, num_blocks: 3, num_levels: 3}}, "
                    "embedder~OVERRIDE~: {AVSLEmbedder: {dim: 8}}}",
        "--transforms~OVERRIDE~", "{train: {}, eval: {}}",
        "--num_epochs_train", "1", "--iterations_per_epoch", "2", "--save_interval", "1",
        "--check_untrained_accuracy", "false", "--device", "cpu",
    ]
    assert run_main(argv) == 0
    out = tmp_path / "explain.png"
    code = explain_main(["--experiment_name", "tiny", "--root_experiment_folder", str(tmp_path), "--dataset_root",
                         str(tmp_path / "data"), "--query", "3", "--top", "2", "--dims", "1", "--out", str(out)])
    assert code == 0
    picture = np.asarray(Image.open(out))
    assert picture.shape[0] > 100 and picture.shape[1] > 300 and picture.std() > 0
    assert explain_main(["--experiment_name", "tiny", "--root_experiment_folder", str(tmp_path), "--dataset_root",
                         str(tmp_path / "data"), "--query", "10000"]) == 2
