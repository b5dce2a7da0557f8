"""ClosedSetSplitManager and PredefinedSplitManager against hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from dmlbench.errors import SplitError
from dmlbench.split_managers import ClosedSetSplitManager, PredefinedSplitManager


def test_closed_set_hand_worked_example():
    # class 0 = even samples, class 1 = odd samples, 6 each. Per class: test = the 3 samples from
    # position 3; trainval = positions 0, 1, 2, one per fold.
    labels = np.tile([0, 1], 6)
    schemes = ClosedSetSplitManager(
        test_size=0.5, test_start_idx=0.5, num_training_partitions=3, num_training_sets=3
    ).split(labels)
    expected_val = [[0, 1], [2, 3], [4, 5]]
    for fold, scheme in enumerate(schemes.values()):
        assert scheme["test"].tolist() == [6, 7, 8, 9, 10, 11]
        assert scheme["val"].tolist() == expected_val[fold]
        assert scheme["train"].tolist() == sorted(set(range(6)) - set(expected_val[fold]))


def test_closed_set_every_split_has_every_class():
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(12), rng.integers(6, 15, size=12)))
    schemes = ClosedSetSplitManager(test_size=0.3, shuffle=True, random_seed=1).split(labels)
    union = set()
    for scheme in schemes.values():
        for split in ("train", "val", "test"):
            assert set(labels[scheme[split]]) == set(range(12))
        union |= set(scheme["val"].tolist())
    test = set(next(iter(schemes.values()))["test"].tolist())
    assert union | test == set(range(len(labels)))
    for label in range(12):  # per-class test share: ceil(0.3 * n)
        count = int(np.sum(labels == label))
        assert int(np.sum(labels[sorted(test)] == label)) == int(np.ceil(0.3 * count))


def test_closed_set_refuses_classes_too_small_for_train_and_val():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    with pytest.raises(SplitError, match=r"class 1 has 2 samples.*1 of 3 classes"):
        ClosedSetSplitManager(test_size=0.5).split(labels)


def test_predefined_uses_the_official_train_test_split():
    labels = np.array([1, 1, 2, 2, 3, 3])
    official = np.array(["train", "test", "train", "train", "test", "test"])
    schemes = PredefinedSplitManager().split(labels, official)
    assert list(schemes) == ["PredefinedSplitScheme_0"]
    scheme = schemes["PredefinedSplitScheme_0"]
    assert list(scheme) == ["train", "test"]
    assert scheme["train"].tolist() == [0, 2, 3] and scheme["test"].tolist() == [1, 4, 5]


def test_predefined_in_shop_query_gallery():
    official = np.array(["query", "train", "gallery", "gallery", "train", "query"])
    scheme = PredefinedSplitManager().split(np.array([5, 1, 5, 6, 2, 6]), official)["PredefinedSplitScheme_0"]
    assert list(scheme) == ["train", "query", "gallery"]
    assert (
        scheme["query"].tolist() == [0, 5]
        and scheme["gallery"].tolist() == [2, 3]
        and scheme["train"].tolist() == [1, 4]
    )


@pytest.mark.parametrize(
    "official, message",
    [
        (None, "no official split"),
        (np.array(["train", "test"]), "2 entries for 3 samples"),
        (np.array(["test", "test", "test"]), "no 'train' samples"),
        (np.array(["train", "", "test"]), "1 samples have an empty"),
        (np.array(["train", "train", "val"]), "nothing to test on"),
        (np.array(["train", "query", "query"]), "'query' and 'gallery' come together"),
    ],
)
def test_predefined_errors(official, message):
    with pytest.raises(SplitError, match=message):
        PredefinedSplitManager().split(np.array([0, 1, 2]), official)
