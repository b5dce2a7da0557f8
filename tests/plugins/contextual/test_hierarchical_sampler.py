"""HierarchicalSampler: batch composition, every class reachable, determinism, clear errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from dmlbench.data.base import RetrievalDataset, TransformedSubset
from dmlbench.errors import ConfigError
from dmlbench.plugins.contextual.sampler import HierarchicalSampler
from dmlbench.training.components import build_sampler

BATCH, PER_CLASS = 16, 2  # halves of 8 = 4 classes x 2 images


def toy_labels() -> tuple[np.ndarray, np.ndarray]:
    """3 super-classes (0: 6 classes, 1: 5 classes, 2: 8 classes), classes of 1..5 images."""
    classes_per_super = {0: 6, 1: 5, 2: 8}
    labels, supers = [], []
    label = 100
    for super_class, count in classes_per_super.items():
        for offset in range(count):
            size = 1 + (offset % 5)
            labels += [label] * size
            supers += [super_class] * size
            label += 1
    return np.array(labels), np.array(supers)


def batches(sampler: HierarchicalSampler, seed: int) -> list[np.ndarray]:
    torch.manual_seed(seed)
    indices = np.array(list(sampler))
    assert len(indices) == len(sampler)
    return [indices[start : start + BATCH] for start in range(0, len(indices), BATCH)]


def test_each_half_is_whole_classes_of_one_super_class_and_the_halves_differ() -> None:
    labels, supers = toy_labels()
    sampler = HierarchicalSampler(
        labels, BATCH, PER_CLASS, super_labels=supers, length_before_new_iter=BATCH * 50
    )
    assert len(sampler) == BATCH * 50
    for batch in batches(sampler, seed=0):
        halves = batch[: BATCH // 2], batch[BATCH // 2 :]
        half_supers = []
        for half in halves:
            assert len(set(supers[half].tolist())) == 1
            half_supers.append(int(supers[half][0]))
            per_class = Counter(labels[half].tolist())
            assert len(per_class) == BATCH // 2 // PER_CLASS
            assert set(per_class.values()) == {PER_CLASS}
            for label in per_class:  # distinct images whenever the class has enough
                chosen = half[labels[half] == label]
                if np.sum(labels == label) >= PER_CLASS:
                    assert len(set(chosen.tolist())) == PER_CLASS
        assert half_supers[0] != half_supers[1]


def test_every_class_and_image_is_reachable_and_super_classes_follow_their_size() -> None:
    labels, supers = toy_labels()
    sampler = HierarchicalSampler(
        labels, BATCH, PER_CLASS, super_labels=supers, length_before_new_iter=BATCH * 400
    )
    drawn = np.concatenate(batches(sampler, seed=1))
    assert set(labels[drawn].tolist()) == set(labels.tolist())
    assert set(drawn.tolist()) == set(range(len(labels)))
    halves = drawn.reshape(-1, BATCH // 2)
    share = np.bincount(supers[halves[:, 0]], minlength=3) / len(halves)
    expected = np.bincount(supers) / len(supers)
    assert np.allclose(share, expected, atol=0.06)


def test_same_seed_same_batches_other_seed_other_batches() -> None:
    labels, supers = toy_labels()
    sampler = HierarchicalSampler(
        labels, BATCH, PER_CLASS, super_labels=supers, length_before_new_iter=BATCH * 20
    )
    first, again, other = batches(sampler, 7), batches(sampler, 7), batches(sampler, 8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_too_few_classes_in_a_super_class_is_a_clear_error() -> None:
    labels, supers = toy_labels()
    with pytest.raises(ConfigError, match="super-class 1 has 5 classes .* needs 6"):
        HierarchicalSampler(labels, 24, 2, super_labels=supers)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"batch_size": 12, "samples_per_class": 4}, "multiple of 2 x samples_per_class"),
        ({"super_labels": None}, "no super-labels"),
        ({"super_labels": np.zeros(1)}, "super-labels for"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict, message: str) -> None:
    labels, supers = toy_labels()
    arguments = {
        "labels": labels,
        "batch_size": BATCH,
        "samples_per_class": PER_CLASS,
        "super_labels": supers,
    }
    arguments.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        HierarchicalSampler(**arguments)


def test_single_super_class_is_an_error() -> None:
    labels, _ = toy_labels()
    with pytest.raises(ConfigError, match="single super-class"):
        HierarchicalSampler(labels, BATCH, PER_CLASS, super_labels=np.zeros_like(labels))


class _Toy(RetrievalDataset):
    def __init__(self) -> None:
        super().__init__()
        labels, supers = toy_labels()
        self._set_samples([f"{i}.jpg" for i in range(len(labels))], labels, super_labels=supers)


def test_built_by_name_reads_super_labels_from_the_training_subset() -> None:
    dataset = _Toy()
    keep = np.flatnonzero(dataset.super_labels != 2)  # a subset: super-classes 0 and 1 only
    subset = TransformedSubset(
        dataset, keep, None, {int(l): i for i, l in enumerate(np.unique(dataset.labels))}
    )
    sampler = build_sampler({"HierarchicalSampler": {"samples_per_class": 2}}, subset.labels, 8, 5, subset)
    assert isinstance(sampler, HierarchicalSampler) and len(sampler) == 40
    torch.manual_seed(0)
    drawn = np.array(list(sampler))
    assert set(dataset.super_labels[keep[drawn]].tolist()) == {0, 1}
