"""MLRCSplitManager against the published MLRC class ranges, a hand-worked example and a naive
loop implementation of the rule in docs/protocol.md."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from dmlbench.registry import build
from dmlbench.split_managers import ClassDisjointSplitManager, MLRCSplitManager


def classes_of(labels: np.ndarray, indices: np.ndarray) -> list[int]:
    return sorted(set(labels[indices].tolist()))


def class_range(first: int, last: int) -> list[int]:
    return list(range(first, last + 1))


def naive_mlrc(
    class_set: list[int], test_size: str, start: str, partitions: int
) -> tuple[set, list[tuple[set, set]]]:
    """Class-by-class loop: test = floor(t N) classes from sorted position floor(s N), wrapping;
    trainval = the rest ascending; fold p: val = the floor(M/P) positions just before floor(pM/P)."""
    ordered = sorted(class_set)
    n = len(ordered)
    num_test = math.floor(Fraction(test_size) * n)
    first = math.floor(Fraction(start) * n)
    test = set()
    for position, label in enumerate(ordered):
        if (position - first) % n < num_test:
            test.add(label)
    trainval = [label for label in ordered if label not in test]
    m = len(trainval)
    num_val = m // partitions
    folds = []
    for fold in range(partitions):
        fold_start = (fold * m) // partitions
        train, val = set(), set()
        for position, label in enumerate(trainval):
            if (position - fold_start) % m >= m - num_val:
                val.add(label)
            else:
                train.add(label)
        folds.append((train, val))
    return test, folds


def test_cub_published_validation_ranges():
    labels = np.repeat(np.arange(200), 3)
    schemes = MLRCSplitManager().split(labels)
    assert list(schemes) == [f"Test50_50_Partitions4_{fold}" for fold in range(4)]
    expected_val = [(75, 99), (0, 24), (25, 49), (50, 74)]
    for (name, scheme), (first, last) in zip(schemes.items(), expected_val):
        assert classes_of(labels, scheme["val"]) == class_range(first, last), name
        assert classes_of(labels, scheme["test"]) == class_range(100, 199)
        train = classes_of(labels, scheme["train"])
        assert len(train) == 75
        assert sorted(train + class_range(first, last)) == class_range(0, 99)


def test_cars_published_validation_ranges():
    labels = np.arange(1, 197)
    schemes = list(MLRCSplitManager().split(labels).values())
    expected_val = [(75, 98), (1, 24), (26, 49), (50, 73)]
    validated = set()
    for scheme, (first, last) in zip(schemes, expected_val):
        assert classes_of(labels, scheme["val"]) == class_range(first, last)
        assert len(classes_of(labels, scheme["train"])) == 74
        assert classes_of(labels, scheme["test"]) == class_range(99, 196)
        validated.update(classes_of(labels, scheme["val"]))
    assert set(class_range(1, 98)) - validated == {25, 74}


def test_sop_class_counts_per_fold():
    labels = np.arange(22634)
    for scheme in MLRCSplitManager().split(labels).values():
        assert (len(scheme["train"]), len(scheme["val"]), len(scheme["test"])) == (8488, 2829, 11317)


def test_hand_worked_example_other_test_size_and_start():
    # 10 classes, test 0.3 from 0.2: test = {2,3,4}; trainval [0,1,5,6,7,8,9], M=7, 2 val classes,
    # folds start at positions 0, 2, 4.
    labels = np.arange(10)
    schemes = MLRCSplitManager(
        test_size=0.3, test_start_idx=0.2, num_training_partitions=3, num_training_sets=3
    ).split(labels)
    assert list(schemes) == ["Test30_20_Partitions3_0", "Test30_20_Partitions3_1", "Test30_20_Partitions3_2"]
    got = [
        (classes_of(labels, s["train"]), classes_of(labels, s["val"]), classes_of(labels, s["test"]))
        for s in schemes.values()
    ]
    assert got == [
        ([0, 1, 5, 6, 7], [8, 9], [2, 3, 4]),
        ([5, 6, 7, 8, 9], [0, 1], [2, 3, 4]),
        ([0, 1, 7, 8, 9], [5, 6], [2, 3, 4]),
    ]


@pytest.mark.parametrize(
    "num_classes, test_size, start, partitions",
    [
        (200, "0.3", "0.5", 4),
        (200, "0.7", "0.1", 4),
        (196, "0.25", "0.0", 5),
        (50, "0.5", "0.75", 3),
        (37, "0.4", "0.9", 2),
        (100, "0.29", "0.33", 4),
        (23, "0.2", "0.95", 6),
    ],
)
def test_matches_naive_reference(num_classes, test_size, start, partitions):
    rng = np.random.default_rng(num_classes)
    class_set = sorted(rng.choice(1000, size=num_classes, replace=False).tolist())
    labels = rng.permutation(np.repeat(class_set, rng.integers(1, 4, size=num_classes)))
    manager = MLRCSplitManager(float(test_size), float(start), partitions, partitions)
    schemes = list(manager.split(labels).values())
    test, folds = naive_mlrc(class_set, test_size, start, partitions)
    assert len(schemes) == partitions
    for scheme, (train, val) in zip(schemes, folds):
        assert set(classes_of(labels, scheme["test"])) == test
        assert set(classes_of(labels, scheme["train"])) == train
        assert set(classes_of(labels, scheme["val"])) == val
        assert np.array_equal(scheme["train"], np.flatnonzero(np.isin(labels, sorted(train))))


def test_trainval_is_exactly_the_non_test_classes_for_any_test_size():
    # powerful-benchmarker 0.9 took the first floor(t N) classes as trainval: wrong unless t = 0.5.
    labels = np.arange(100)
    for test_size in (0.2, 0.35, 0.5, 0.8):
        scheme = MLRCSplitManager(test_size=test_size).split(labels)[
            f"Test{round(test_size * 100):02d}_50_Partitions4_0"
        ]
        test = set(classes_of(labels, scheme["test"]))
        trainval = set(classes_of(labels, scheme["train"])) | set(classes_of(labels, scheme["val"]))
        assert len(test) == round(test_size * 100)
        assert trainval == set(range(100)) - test


def test_decimal_test_size_is_not_lost_to_float_rounding():
    # 0.29 * 100 == 28.999999999999996 in floating point; the split must hold out 29 classes.
    schemes = MLRCSplitManager(test_size=0.29, num_training_partitions=1, num_training_sets=1).split(
        np.arange(100)
    )
    assert list(schemes) == ["Test29_50_Partitions1_0"]
    assert len(schemes["Test29_50_Partitions1_0"]["test"]) == 29


def test_fewer_training_sets_gives_the_first_folds_only():
    labels = np.arange(200)
    all_folds = MLRCSplitManager().split(labels)
    first_two = MLRCSplitManager(num_training_sets=2).split(labels)
    assert list(first_two) == list(all_folds)[:2]
    for name in first_two:
        for split in ("train", "val", "test"):
            assert np.array_equal(first_two[name][split], all_folds[name][split])


def test_single_partition_has_no_validation_split():
    schemes = MLRCSplitManager(num_training_partitions=1, num_training_sets=1).split(np.arange(20))
    assert list(schemes) == ["Test50_50_Partitions1_0"]
    assert set(schemes["Test50_50_Partitions1_0"]) == {"train", "test"}
    assert schemes["Test50_50_Partitions1_0"]["train"].tolist() == list(range(10))


def test_swap_from_class_disjoint_keeps_keyword_arguments():
    kwargs = {"test_size": 0.4, "test_start_idx": 0.2, "num_training_partitions": 3, "num_training_sets": 2}
    class_disjoint = build("split_manager", {"ClassDisjointSplitManager": dict(kwargs)})
    mlrc = build("split_manager", {"MLRCSplitManager": dict(kwargs)})
    assert isinstance(class_disjoint, ClassDisjointSplitManager) and isinstance(mlrc, MLRCSplitManager)
    labels = np.arange(30)
    assert (
        list(class_disjoint.split(labels))
        == list(mlrc.split(labels))
        == ["Test40_20_Partitions3_0", "Test40_20_Partitions3_1"]
    )


def test_splits_by_super_label_with_hierarchy_level():
    classes = np.arange(40)
    super_of_class = classes // 4  # 10 super-classes of 4 classes each
    labels = np.stack([np.repeat(classes, 2), np.repeat(super_of_class, 2)], 1)
    schemes = MLRCSplitManager(num_training_partitions=5, num_training_sets=5, hierarchy_level=1).split(
        labels
    )
    for scheme in schemes.values():
        assert classes_of(labels[:, 1], scheme["test"]) == [5, 6, 7, 8, 9]
        assert len(classes_of(labels[:, 1], scheme["val"])) == 1
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            assert not set(classes_of(labels[:, 1], scheme[a])) & set(classes_of(labels[:, 1], scheme[b]))
            assert not set(classes_of(labels[:, 0], scheme[a])) & set(classes_of(labels[:, 0], scheme[b]))
