"""Disjointness and coverage properties over random label sets, for every fold manager."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dmlbench.errors import SplitError
from dmlbench.split_managers import (
    ClassDisjointSplitManager,
    ClosedSetSplitManager,
    IndexSplitManager,
    MLRCSplitManager,
)

MANAGERS = [MLRCSplitManager, ClassDisjointSplitManager, IndexSplitManager, ClosedSetSplitManager]


def random_case(rng: np.random.Generator, min_class_size: int, max_class_size: int, max_test_size: float):
    num_classes = int(rng.integers(2, 40))
    class_values = rng.choice(np.arange(-50, 500), size=num_classes, replace=False)
    labels = rng.permutation(
        np.repeat(class_values, rng.integers(min_class_size, max_class_size + 1, size=num_classes))
    )
    partitions = int(rng.integers(1, 6))
    kwargs = {
        "test_size": round(float(rng.uniform(0.05, max_test_size)), 2),
        "test_start_idx": round(float(rng.uniform(0.0, 0.99)), 2),
        "num_training_partitions": partitions,
        "num_training_sets": int(rng.integers(1, partitions + 1)),
    }
    return labels, kwargs


def impossible(manager_class, labels: np.ndarray, kwargs: dict) -> bool:
    """Whether the request cannot be met, worked out from the counts alone."""
    t, folds = kwargs["test_size"], kwargs["num_training_partitions"]
    if manager_class is ClosedSetSplitManager:
        sizes = np.unique(labels, return_counts=True)[1]
        trainval = sizes - np.ceil(t * sizes - 1e-9)
        too_small = np.any(trainval < (2 if folds > 1 else 1))
        last_val_empty = folds > 1 and trainval.max() < kwargs["num_training_sets"]
        return bool(too_small or last_val_empty)
    count = len(labels) if manager_class is IndexSplitManager else len(set(labels.tolist()))
    num_test = (
        math.floor(t * count + 1e-9) if manager_class is MLRCSplitManager else math.ceil(t * count - 1e-9)
    )
    return num_test == 0 or num_test >= count or (folds > 1 and count - num_test < folds)


@pytest.mark.parametrize("manager_class", MANAGERS, ids=lambda cls: cls.__name__)
def test_random_label_sets(manager_class):
    rng = np.random.default_rng(MANAGERS.index(manager_class))
    made = refused = 0
    for _ in range(150):
        labels, kwargs = random_case(
            rng, *((3, 12, 0.5) if manager_class is ClosedSetSplitManager else (1, 6, 0.95))
        )
        try:
            schemes = manager_class(**kwargs).split(labels)
        except SplitError:
            assert impossible(manager_class, labels, kwargs), kwargs
            refused += 1
            continue
        assert not impossible(manager_class, labels, kwargs), kwargs
        made += 1
        assert len(schemes) == kwargs["num_training_sets"]
        first_test = None
        vals = []
        for scheme in schemes.values():
            assert set(scheme) == (
                {"train", "test"} if kwargs["num_training_partitions"] == 1 else {"train", "val", "test"}
            )
            parts = list(scheme.values())
            for i, a in enumerate(parts):
                assert a.dtype == np.int64 and a.size > 0 and np.all(np.diff(a) > 0)
                for b in parts[i + 1 :]:
                    assert not set(a.tolist()) & set(b.tolist())
                    if manager_class in (MLRCSplitManager, ClassDisjointSplitManager):
                        assert not set(labels[a].tolist()) & set(labels[b].tolist())
            if manager_class is not MLRCSplitManager:  # MLRC may leave M % P classes out of every val
                assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))
            if manager_class is ClosedSetSplitManager:
                assert set(labels[scheme["train"]].tolist()) == set(labels.tolist())
            first_test = scheme["test"] if first_test is None else first_test
            assert np.array_equal(scheme["test"], first_test)
            if "val" in scheme:
                vals.append(set(scheme["val"].tolist()))
        for i, a in enumerate(vals):
            for b in vals[i + 1 :]:
                assert not a & b
        if manager_class is MLRCSplitManager:
            num_classes = len(set(labels.tolist()))
            assert len(set(labels[first_test].tolist())) == math.floor(
                kwargs["test_size"] * num_classes + 1e-9
            )
        if manager_class is ClassDisjointSplitManager:
            num_classes = len(set(labels.tolist()))
            assert len(set(labels[first_test].tolist())) == math.ceil(
                kwargs["test_size"] * num_classes - 1e-9
            )
    assert made > 40 and refused > 0


@pytest.mark.parametrize("manager_class", MANAGERS, ids=lambda cls: cls.__name__)
def test_same_input_same_split(manager_class):
    labels = np.random.default_rng(0).integers(0, 10, size=200)
    first = (
        manager_class(test_size=0.3, shuffle=True, random_seed=5).split(labels)
        if manager_class is not MLRCSplitManager
        else manager_class(test_size=0.3).split(labels)
    )
    second = (
        manager_class(test_size=0.3, shuffle=True, random_seed=5).split(labels)
        if manager_class is not MLRCSplitManager
        else manager_class(test_size=0.3).split(labels)
    )
    assert list(first) == list(second)
    for name in first:
        for split in first[name]:
            assert np.array_equal(first[name][split], second[name][split])
