"""The rehearsal's full-size trees (bench/rehearsal/layouts.py): the published counts, and the
project's own loaders reading the metadata as written."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.rehearsal import layouts
from dmlbench.registry import build


def test_published_counts():
    cub = Counter(image.label for image in layouts.plan_cub())
    assert sum(cub.values()) == 11788 and len(cub) == 200
    assert sum(n for c, n in cub.items() if c < 100) == 5864
    cars = Counter(image.label for image in layouts.plan_cars())
    assert sum(cars.values()) == 16185 and len(cars) == 196
    assert sum(n for c, n in cars.items() if c < 98) == 8054
    sop = Counter(image.label for image in layouts.plan_sop())
    assert sum(sop.values()) == 120053 and len(sop) == 22634
    assert sum(n for c, n in sop.items() if c < 11318) == 59551
    assert min(sop.values()) >= 2 and max(sop.values()) <= 12  # SOP: 2-12 images per product
    images, statuses = layouts.plan_inshop()
    assert len(images) == 52712 and len({i.label for i in images}) == 7982
    for status, (count, items) in layouts.INSHOP_STATUS_SIZES.items():
        chosen = [i for i, s in zip(images, statuses) if s == status]
        assert len(chosen) == count and len({i.label for i in chosen}) == items


@pytest.mark.parametrize(
    ("low", "high", "total", "classes"), [(2, 12, 100, 20), (2, 12, 40, 20), (2, 12, 240, 20)]
)
def test_bounded_counts_hit_the_total_within_bounds(low, high, total, classes):
    counts = layouts.bounded_counts(np.random.default_rng(0), total, classes, low, high)
    assert sum(counts) == total and min(counts) >= low and max(counts) <= high


def touch_images(folder: Path, images: list[layouts.Image]) -> None:
    for image in images:
        path = folder / image.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def test_cub_and_cars_trees_load_with_the_published_splits(tmp_path):
    cub_images = layouts.plan_cub()
    touch_images(tmp_path / "CUB_200_2011", cub_images)
    layouts.write_cub(tmp_path / "CUB_200_2011", cub_images)
    cub = build("dataset", {"CUB200": {"root": str(tmp_path)}}, role="dataset")
    assert len(cub.labels) == 11788 and len(np.unique(cub.labels)) == 200
    cars_images = layouts.plan_cars()
    touch_images(tmp_path / "cars196", cars_images)
    layouts.write_cars(tmp_path / "cars196", cars_images)
    cars = build("dataset", {"Cars196": {"root": str(tmp_path)}}, role="dataset")
    assert len(cars.labels) == 16185 and len(np.unique(cars.labels)) == 196
