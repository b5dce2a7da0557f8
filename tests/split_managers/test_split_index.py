"""IndexSplitManager and ClassDisjointSplitManager against hand-worked examples."""

from __future__ import annotations

import numpy as np

from dmlbench.split_managers import ClassDisjointSplitManager, IndexSplitManager


def as_lists(schemes):
    return {name: {split: idx.tolist() for split, idx in scheme.items()} for name, scheme in schemes.items()}


def test_index_split_hand_worked_example():
    # 10 samples, test = ceil(0.3 * 10) = 3 samples from position floor(0.2 * 10) = 2: {2, 3, 4};
    # trainval in order after the test block: 5 6 7 8 9 0 1, cut into chunks of 3, 2, 2.
    schemes = IndexSplitManager(0.3, 0.2, 3, 3).split(np.zeros(10, dtype=int))
    assert as_lists(schemes) == {
        "Test30_20_Partitions3_0": {"train": [0, 1, 8, 9], "val": [5, 6, 7], "test": [2, 3, 4]},
        "Test30_20_Partitions3_1": {"train": [0, 1, 5, 6, 7], "val": [8, 9], "test": [2, 3, 4]},
        "Test30_20_Partitions3_2": {"train": [5, 6, 7, 8, 9], "val": [0, 1], "test": [2, 3, 4]},
    }


def test_test_start_idx_is_not_mirrored():
    # powerful-benchmarker 0.9 started the block at n - floor(0.25 n) = 75 instead of 25.
    schemes = IndexSplitManager(
        test_size=0.5, test_start_idx=0.25, num_training_partitions=2, num_training_sets=1
    ).split(np.zeros(100, dtype=int))
    assert schemes["Test50_25_Partitions2_0"]["test"].tolist() == list(range(25, 75))


def test_test_block_wraps_around_the_end():
    schemes = IndexSplitManager(
        test_size=0.4, test_start_idx=0.8, num_training_partitions=2, num_training_sets=2
    ).split(np.zeros(10, dtype=int))
    first, second = schemes.values()
    assert first["test"].tolist() == [0, 1, 8, 9]
    assert first["val"].tolist() == [2, 3, 4] and second["val"].tolist() == [5, 6, 7]


def test_index_split_may_share_classes_but_never_samples():
    labels = np.tile(np.arange(5), 8)
    scheme = IndexSplitManager().split(labels)["Test50_50_Partitions4_0"]
    assert set(labels[scheme["train"]]) & set(labels[scheme["test"]])
    assert not set(scheme["train"]) & set(scheme["test"])


def test_class_disjoint_default_on_cub_validates_consecutive_quarters():
    # The first half of the sorted classes is cut into K folds in order: fold p validates
    # classes 25p .. 25p+24 (unlike MLRC, whose fold 0 validates 75-99).
    labels = np.repeat(np.arange(200), 2)
    schemes = ClassDisjointSplitManager().split(labels)
    for fold, scheme in enumerate(schemes.values()):
        assert sorted(set(labels[scheme["val"]])) == list(range(25 * fold, 25 * fold + 25))
        assert sorted(set(labels[scheme["test"]])) == list(range(100, 200))
        assert len(set(labels[scheme["train"]])) == 75


def test_class_disjoint_splits_on_sorted_class_values_not_sample_order():
    labels = np.array([90, 10, 50, 10, 70, 30, 90, 30, 50, 70])
    schemes = ClassDisjointSplitManager(
        test_size=0.4, test_start_idx=0.6, num_training_partitions=3, num_training_sets=3
    ).split(labels)
    # sorted classes 10 30 50 70 90: test = ceil(2) classes from position 3 = {70, 90};
    # trainval order 10 30 50 -> one class per fold.
    for fold, scheme in enumerate(schemes.values()):
        assert set(labels[scheme["test"]]) == {70, 90}
        assert set(labels[scheme["val"]]) == {[10, 30, 50][fold]}
        assert scheme["val"].tolist() == np.flatnonzero(labels == [10, 30, 50][fold]).tolist()


def test_shuffle_is_seeded_and_changes_the_split():
    labels = np.arange(40)
    first = ClassDisjointSplitManager(shuffle=True, random_seed=3).split(labels)
    again = ClassDisjointSplitManager(shuffle=True, random_seed=3).split(labels)
    other = ClassDisjointSplitManager(shuffle=True, random_seed=4).split(labels)
    plain = ClassDisjointSplitManager().split(labels)
    assert as_lists(first) == as_lists(again)
    assert as_lists(first) != as_lists(other)
    assert as_lists(first) != as_lists(plain)
    for scheme in first.values():
        assert len(scheme["test"]) == 20 and len(scheme["val"]) == 5
