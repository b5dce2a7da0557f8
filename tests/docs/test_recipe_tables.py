"""The recipe tables of docs/methods/<method>.md are what the exp_configs resolve to.

Each table is generated (dmlbench/recipe_tables.py) from ``run.py --reproduce_results
exp_configs/<name>``'s config and the official values in docs/methods/recipes/<method>.yaml; a
config changed without regenerating the tables fails here (``python -m dmlbench.recipe_tables``
rewrites them, and the diff shows the new value beside the official one).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dmlbench import recipe_tables
from dmlbench.config.yaml_io import load_yaml_file
from dmlbench.errors import ConfigError

RECIPE_FILES = sorted(recipe_tables.RECIPES.glob("*.yaml"))
#: the paper recipes each method's table must cover (the _mlrc and combined configs are protocol variants)
EXPECTED = {
    "avsl": {f"{d}_{m}" for d in ("cub", "car", "sop") for m in ("avsl", "proxyanchor")},
    "classification": {f"{d}_classification" for d in ("cub", "car", "sop", "inshop")},
    "contextual": {f"{d}_contextual" for d in ("cub", "car", "sop", "inaturalist")}
    | {f"{d}_contextual_224" for d in ("cub", "car", "sop")},
    "das": {f"{d}_ms_das" for d in ("cub", "car", "sop")},
    "sdm": {f"{d}_{loss}_sdm" for d in ("cub", "car") for loss in ("ms", "triplet", "contrast", "margin")},
}


def test_every_method_has_its_recipes() -> None:
    covered = {path.stem: set(load_yaml_file(path)["configs"]) for path in RECIPE_FILES}
    assert covered == EXPECTED


@pytest.mark.parametrize("recipe_file", RECIPE_FILES, ids=lambda path: path.stem)
def test_the_doc_holds_the_tables_the_configs_resolve_to(recipe_file: Path) -> None:
    doc, block = recipe_tables.section(recipe_file)
    text = doc.read_text(encoding="utf-8")
    assert recipe_tables.render_doc(doc, block) == text, (
        f"{doc.name}: the recipe tables differ from the configs; run python -m dmlbench.recipe_tables"
    )
    assert text.count(recipe_tables.BEGIN) == 1


def test_a_resolved_value_reaches_its_row() -> None:
    """Independent spot checks of the renderer against values read off the config files."""
    config = recipe_tables.resolved("cub_classification")
    assert recipe_tables.ROWS["epochs"][1](config) == "31"
    batches = recipe_tables.ROWS["batches"][1](config)
    assert batches == (
        "batch 75, ClassBalancedSampler(images_per_class=25, image_replacement=true, class_rounds=false), "
        "78 iterations per epoch"
    )


@pytest.mark.parametrize(
    "rows, message",
    [
        ({"trunk": {"official": "x", "source": "y", "status": "same"}}, "needs official, source and status"),
        ({"trunkk": {"official": "x", "source": "y", "status": "equal"}}, "unknown row"),
        ({"trunk": {"official": "x", "source": "y", "status": "equal"}}, "no official value for pooling"),
    ],
)
def test_an_incomplete_recipe_file_names_the_row(rows, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        recipe_tables.official_rows({"configs": {"cub_classification": rows}}, "cub_classification", "x.yaml")
