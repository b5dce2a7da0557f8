"""The with_<dataset>.yaml files select registered data sets and the MLRC schedules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import dmlbench
from dmlbench.registry import lookup

CONFIGS = Path(dmlbench.__file__).parent / "configs"

# docs/protocol.md: (save_interval, patience) CUB (2, 9), Cars (5, 14), SOP (20, 39)
MLRC_SCHEDULE = {"cub200": (2, 9), "cars196": (5, 14), "sop": (20, 39)}
DATASET_OF = {
    "cub200": "CUB200",
    "cars196": "Cars196",
    "sop": "StanfordOnlineProducts",
    "inshop": "InShop",
    "inaturalist": "INaturalist",
}


@pytest.mark.parametrize("short", sorted(DATASET_OF))
def test_dataset_file_overrides_the_dataset_with_a_registered_name(short):
    config = yaml.safe_load((CONFIGS / "config_dataset" / f"with_{short}.yaml").read_text())
    assert config["dataset~OVERRIDE~"] == {DATASET_OF[short]: {}}
    lookup("dataset", DATASET_OF[short])  # raises when the name is not registered


@pytest.mark.parametrize("short", sorted(DATASET_OF))
def test_general_file_sets_a_schedule(short):
    config = yaml.safe_load((CONFIGS / "config_general" / f"with_{short}.yaml").read_text())
    assert set(config) == {"save_interval", "patience"}
    if short in MLRC_SCHEDULE:
        assert (config["save_interval"], config["patience"]) == MLRC_SCHEDULE[short]


def test_query_gallery_datasets_use_their_official_split():
    for short in ("inshop", "inaturalist"):
        config = yaml.safe_load((CONFIGS / "config_dataset" / f"with_{short}.yaml").read_text())
        assert list(config["split_manager~OVERRIDE~"]) == ["PredefinedSplitManager"]
