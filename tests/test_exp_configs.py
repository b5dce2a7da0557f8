"""Every exp_configs/<name> (except the demo, which CI runs in full) must still build and train.

Each config goes through the real command line (``--reproduce_results``), with only the data and
the size of the run swapped out: the synthetic DemoShapes data (64 classes x 2 images of 16
pixels), two MLRC folds, a tiny convolutional trunk, one iteration of one epoch. Losses,
miners, samplers, embedders, optimizers, schedulers and warm-up settings stay as the config
sets them, so a renamed class, a wrong keyword or a missing optimizer fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmlbench.cli import main
from dmlbench.config.yaml_io import load_yaml_file

EXP_CONFIGS = Path(__file__).resolve().parents[1] / "exp_configs"
NAMES = sorted(
    path.name for path in EXP_CONFIGS.iterdir() if path.name != "demo" and (path / "configs").is_dir()
)

#: 64 classes -> 32 test classes and 16 training classes per fold: enough for the MLRC m-per-class
#: batches (8 classes of 4) and the classification baseline's SOP/In-Shop batches (15 of 5).
TINY_RUN = [
    "--merge_argparse_when_resuming",
    "--dataset~OVERRIDE~",
    "{DemoShapes: {num_classes: 64, images_per_class: 2, image_size: 16}}",
    "--split_manager~OVERRIDE~",
    "{MLRCSplitManager: {test_size: 0.5, test_start_idx: 0.5, num_training_partitions: 2, num_training_sets: 1}}",
    "--models",
    "{trunk~OVERRIDE~: {SmallConvNet: {num_features: 16, width: 8, num_blocks: 2}}}",
    "--transforms~OVERRIDE~",
    "{train: {RandomResizedCrop: {size: 16, scale: [0.5, 1]}}, eval: {}}",
    "--num_epochs_train",
    "1",
    "--iterations_per_epoch",
    "1",
    "--save_interval",
    "1",
    "--check_untrained_accuracy",
    "false",
    "--dataloader_num_workers",
    "0",
    "--eval_batch_size",
    "256",
    "--device",
    "cpu",
]


#: exp_configs whose batches need more training classes than the tiny data has (the DAS paper's
#: batches of 56 classes x 2): they run with batches of the same shape, 16 classes x 2.
def test_the_zoo_is_there() -> None:
    """The MLRC losses on CUB200 and Cars196, and the classification baseline's four data sets."""
    losses = [
        "contrastive",
        "triplet",
        "ntxent",
        "proxy_nca",
        "margin",
        "margin_per_class",
        "normalized_softmax",
        "cosface",
        "arcface",
        "fastap",
        "snr",
        "ms",
        "ms_miner",
        "softtriple",
    ]
    expected = {f"{dataset}_{loss}" for dataset in ("cub", "car") for loss in losses}
    expected |= {f"{dataset}_classification" for dataset in ("cub", "car", "sop", "inshop")}
    assert expected <= set(NAMES), sorted(expected - set(NAMES))


#: Configs whose batches do not fit the 16 demo training classes get smaller batches of the same
#: sampler: the contextual recipes' 32 (or 16 for Cars 224) classes per batch, and hierarchical
#: halves of 16-32 classes of one super-class (a demo shape has about 2 training classes).
SMALLER_BATCHES = {
    **{
        name: ["--batch_size", "32"]
        for name in ("cub_contextual", "car_contextual", "cub_contextual_224", "car_contextual_224")
    },
    **{
        name: ["--batch_size", "8"]
        for name in ("sop_contextual", "sop_contextual_224", "inaturalist_contextual")
    },
    # DAS's paper batch is 56 classes x 2; the demo folds have 16 training classes
    **{name: ["--batch_size", "32"] for name in ("cub_ms_das", "car_ms_das", "sop_ms_das")},
}
#: Configs whose embedder reads several feature maps (models/multilevel.py) get a tiny multi-level trunk.
TINY_MULTILEVEL_TRUNK = (
    "{trunk~OVERRIDE~: {MultiLevelSmallConvNet: {width: 4, num_blocks: 3, num_levels: 3}}}"
)


def tiny_run(name: str) -> list[str]:
    models = EXP_CONFIGS / name / "configs" / "config_models.yaml"
    if models.exists() and "MultiLevel" in models.read_text():
        index = TINY_RUN.index("--models") + 1
        return [*TINY_RUN[:index], TINY_MULTILEVEL_TRUNK, *TINY_RUN[index + 1 :]]
    return TINY_RUN


def test_the_avsl_experiments_are_there() -> None:
    """AVSL and its Proxy-Anchor baseline, the paper recipe and the MLRC protocol, on the 3 data sets."""
    expected = {
        f"{dataset}_{method}{protocol}"
        for dataset in ("cub", "car", "sop")
        for method in ("avsl", "proxyanchor")
        for protocol in ("", "_mlrc")
    }
    assert expected <= set(NAMES), sorted(expected - set(NAMES))


#: One config per method family and data-set kind in the default test selection (about 3 s of CPU
#: each); every other config carries the ``exp_configs`` mark (deselected by default, run by .ci/run).
DEFAULT_SELECTION = {
    "cub_ms",  # an MLRC loss + miner
    "car_softtriple",  # a loss with its own parameters and optimizer
    "sop_arcface",  # SOP's folds and sampler
    "car_ms_das_sdm",  # two plugins composed (DAS + SDM)
    "cub_avsl_mlrc",  # a multi-level trunk and a similarity plugin
    "sop_contextual",  # hierarchical sampler, trained projector
    "inshop_classification",  # query/gallery data, binary codes
    "demo_avsl",
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=() if name in DEFAULT_SELECTION else pytest.mark.exp_configs)
        for name in NAMES
    ],
)
def test_exp_config_trains_one_iteration(
    name: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_root = tmp_path_factory.getbasetemp() / "exp_config_data"  # DemoShapes is generated once
    argv = [
        "--reproduce_results",
        str(EXP_CONFIGS / name),
        "--experiment_name",
        name,
        "--root_experiment_folder",
        str(tmp_path),
        "--dataset_root",
        str(data_root),
        *tiny_run(name),
        *SMALLER_BATCHES.get(name, []),
    ]
    assert main(argv) == 0
    report = json.loads((tmp_path / name / "meta" / "report.json").read_text())
    scores = report["results"]["test"]["trained"]["separated"]["mean"]
    assert 0.0 <= scores["precision_at_1"] <= 1.0
    saved_eval = load_yaml_file(tmp_path / name / "configs" / "config_eval.yaml")
    if saved_eval.get("eval_binarize"):  # the classification baseline also scores binary codes
        assert 0.0 <= scores["binary_precision_at_1"] <= 1.0
