"""Every refusal: bad constructor arguments, impossible requests, malformed labels, and the
post-split checks (fed by deliberately broken managers)."""

from __future__ import annotations

import numpy as np
import pytest

from dmlbench.errors import DMLBenchError, SplitError
from dmlbench.split_managers import (
    ClassDisjointSplitManager,
    ClosedSetSplitManager,
    IndexSplitManager,
    MLRCSplitManager,
    SplitManager,
)
from dmlbench.split_managers.partitioned import PartitionedSplitManager

FOLD_MANAGERS = [MLRCSplitManager, ClassDisjointSplitManager, IndexSplitManager, ClosedSetSplitManager]


def test_split_error_is_a_user_error():
    assert issubclass(SplitError, DMLBenchError)


@pytest.mark.parametrize("manager_class", FOLD_MANAGERS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"test_size": 0}, r"test_size=0.0 must satisfy 0 < test_size < 1"),
        ({"test_size": 1.0}, r"test_size=1.0 must satisfy"),
        ({"test_size": -0.2}, r"test_size=-0.2 must satisfy"),
        ({"test_size": "0.5"}, r"test_size='0.5' must be a number"),
        ({"test_size": True}, r"test_size=True must be a number"),
        ({"test_start_idx": 1.0}, r"test_start_idx=1.0 must satisfy 0 <= test_start_idx < 1"),
        ({"test_start_idx": -0.1}, r"test_start_idx=-0.1 must satisfy"),
        ({"num_training_partitions": 0}, r"num_training_partitions=0 must be >= 1"),
        ({"num_training_partitions": 2.0}, r"num_training_partitions=2.0 must be an integer"),
        ({"num_training_sets": 0}, r"num_training_sets=0 must be >= 1"),
        (
            {"num_training_partitions": 3, "num_training_sets": 4},
            r"num_training_sets=4 is more than num_training_partitions=3",
        ),
        ({"hierarchy_level": -1}, r"hierarchy_level=-1 must be >= 0"),
        ({"shuffle": "yes"}, r"shuffle='yes' must be true or false"),
        ({"random_seed": -3}, r"random_seed=-3 must be >= 0"),
    ],
)
def test_constructor_refuses_bad_arguments(manager_class, kwargs, message):
    with pytest.raises(SplitError, match=f"^{manager_class.__name__}: {message}"):
        manager_class(**kwargs)


def test_mlrc_refuses_shuffle():
    with pytest.raises(SplitError, match="MLRCSplitManager: shuffle=True is not supported"):
        MLRCSplitManager(shuffle=True)


@pytest.mark.parametrize(
    "manager, labels, message",
    [
        (
            MLRCSplitManager(),
            np.arange(6),
            r"num_training_partitions=4 folds need at least 4 classes outside the test split, but test_size=0.5 leaves 3 of 6",
        ),
        (
            MLRCSplitManager(test_size=0.2),
            np.arange(4),
            r"test_size=0.2 of 4 classes rounds down to 0 test classes",
        ),
        (
            MLRCSplitManager(test_size=0.9, num_training_partitions=1, num_training_sets=1),
            np.arange(1),
            r"rounds down to 0 test classes",
        ),
        (
            ClassDisjointSplitManager(),
            np.repeat(np.arange(6), 5),
            r"4 folds need at least 4 classes outside the test split, but test_size=0.5 leaves 3 of 6",
        ),
        (
            ClassDisjointSplitManager(test_size=0.9),
            np.arange(3),
            r"test_size=0.9 of 3 classes puts all of them in the test split",
        ),
        (
            IndexSplitManager(),
            np.zeros(7, dtype=int),
            r"4 folds need at least 4 samples outside the test split, but test_size=0.5 leaves 3 of 7",
        ),
        (IndexSplitManager(test_size=0.95), np.zeros(10, dtype=int), r"puts all of them in the test split"),
        (
            ClosedSetSplitManager(num_training_partitions=4, num_training_sets=4),
            np.repeat([0, 1], 6),
            r"fold 3 of 4 gets no validation sample",
        ),
    ],
)
def test_impossible_requests(manager, labels, message):
    with pytest.raises(SplitError, match=message):
        manager.split(labels)


@pytest.mark.parametrize(
    "labels, kwargs, message",
    [
        (np.array([], dtype=int), {}, r"expected a non-empty 1-D"),
        (np.zeros((2, 2, 2), dtype=int), {}, r"got shape \(2, 2, 2\)"),
        (np.array([0.5, 1.0, 2.0]), {}, r"class labels must be integers, got dtype float64"),
        (np.array(["a", "b"]), {}, r"class labels must be integers"),
        (np.arange(10), {"hierarchy_level": 1}, r"hierarchy_level=1 needs 2-D labels"),
        (
            np.zeros((10, 2), dtype=int),
            {"hierarchy_level": 2},
            r"hierarchy_level=2 but the labels have only 2 levels",
        ),
    ],
)
def test_malformed_labels(labels, kwargs, message):
    with pytest.raises(SplitError, match=message):
        MLRCSplitManager(**kwargs).split(labels)


def test_whole_float_labels_are_accepted():
    schemes = MLRCSplitManager(num_training_partitions=1, num_training_sets=1).split(
        np.arange(10, dtype=np.float32)
    )
    assert schemes["Test50_50_Partitions1_0"]["test"].tolist() == [5, 6, 7, 8, 9]


class Fixed(SplitManager):
    """Returns whatever schemes it was given, to exercise the checks."""

    def __init__(self, schemes, class_disjoint=False):
        super().__init__()
        self.schemes = schemes
        self.class_disjoint = class_disjoint

    def _make_schemes(self, class_labels, official_split):
        return self.schemes


class FixedFolds(PartitionedSplitManager):
    def __init__(self, schemes):
        super().__init__()
        self.schemes = schemes

    def _make_schemes(self, class_labels, official_split):
        return self.schemes


def idx(*values):
    return np.array(values, dtype=np.int64)


@pytest.mark.parametrize(
    "schemes, class_disjoint, message",
    [
        ({}, False, "produced no split scheme"),
        ({"S": {"train": idx(0, 1), "test": idx()}}, False, "scheme S, split 'test' is empty"),
        ({"S": {"train": idx(1, 0), "test": idx(2)}}, False, "sorted and free of duplicates"),
        ({"S": {"train": idx(0, 0), "test": idx(2)}}, False, "sorted and free of duplicates"),
        ({"S": {"train": idx(0, 9), "test": idx(2)}}, False, "out of range for 4 samples"),
        ({"S": {"train": np.array([0, 1], dtype=np.int32), "test": idx(2)}}, False, "1-D int64"),
        ({"S": {"train": idx(0, 1), "test": idx(1, 2)}}, False, "1 samples are in both 'train' and 'test'"),
        ({"S": {"train": idx(0), "test": idx(1)}}, True, "1 classes are in both 'train' and 'test'"),
    ],
)
def test_post_split_checks(schemes, class_disjoint, message):
    labels = np.array([5, 5, 6, 6])
    with pytest.raises(SplitError, match=message):
        Fixed(schemes, class_disjoint).split(labels)


def test_fold_checks_test_is_shared_and_validations_disjoint():
    labels = np.arange(6)
    different_test = {
        "A": {"train": idx(0), "val": idx(1), "test": idx(5)},
        "B": {"train": idx(1), "val": idx(2), "test": idx(4)},
    }
    with pytest.raises(SplitError, match="scheme B has a different test split"):
        FixedFolds(different_test).split(labels)
    shared_val = {
        "A": {"train": idx(0), "val": idx(1), "test": idx(5)},
        "B": {"train": idx(2), "val": idx(1), "test": idx(5)},
    }
    with pytest.raises(SplitError, match="the validation splits of A and B overlap"):
        FixedFolds(shared_val).split(labels)
