"""ClassBalancedSampler: batch composition, repeats only where a class is too small, epoch length."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from dmlbench.errors import ConfigError
from dmlbench.plugins.classification import ClassBalancedSampler
from dmlbench.training.components import build_sampler

#: 8 classes: most larger than 25 images, one of exactly 25, one of 3 and one of a single image.
CLASS_SIZES = {10: 30, 11: 30, 12: 3, 13: 26, 14: 25, 15: 40, 16: 1, 17: 30}
LABELS = np.repeat(list(CLASS_SIZES), list(CLASS_SIZES.values()))
BATCH, PER_CLASS = 75, 25


def batches(sampler: ClassBalancedSampler, seed: int = 0) -> list[np.ndarray]:
    torch.manual_seed(seed)
    indices = np.array(list(sampler))
    assert len(indices) % BATCH == 0
    return [indices[start : start + BATCH] for start in range(0, len(indices), BATCH)]


def test_epoch_length_is_length_before_new_iter_or_one_pass() -> None:
    sampler = ClassBalancedSampler(LABELS, BATCH, PER_CLASS, length_before_new_iter=BATCH * 8 + 10)
    assert len(sampler) == BATCH * 8
    assert sum(len(batch) for batch in batches(sampler)) == BATCH * 8
    one_pass = ClassBalancedSampler(LABELS, BATCH, PER_CLASS)
    assert len(one_pass) == (len(LABELS) // BATCH) * BATCH == 150


def test_each_batch_holds_distinct_classes_with_images_per_class_each() -> None:
    for batch in batches(ClassBalancedSampler(LABELS, BATCH, PER_CLASS, length_before_new_iter=BATCH * 8)):
        per_class = Counter(LABELS[batch].tolist())
        assert len(per_class) == BATCH // PER_CLASS
        assert set(per_class.values()) == {PER_CLASS}


def test_images_repeat_within_a_batch_only_for_classes_smaller_than_their_share() -> None:
    for batch in batches(
        ClassBalancedSampler(LABELS, BATCH, PER_CLASS, length_before_new_iter=BATCH * 8), seed=3
    ):
        for label in np.unique(LABELS[batch]):
            members = batch[LABELS[batch] == label]
            counts = Counter(members.tolist())
            size = CLASS_SIZES[int(label)]
            if size >= PER_CLASS:
                assert len(counts) == PER_CLASS  # 25 different images
            else:  # every image of the class, as evenly as possible: 3 images -> 8, 8 and 9 times
                assert len(counts) == size
                assert max(counts.values()) - min(counts.values()) <= 1


def test_classes_are_dealt_in_rounds_and_images_without_replacement() -> None:
    # 8 batches x 3 classes = 24 slots = every one of the 8 classes exactly 3 times.
    epoch = batches(ClassBalancedSampler(LABELS, BATCH, PER_CLASS, length_before_new_iter=BATCH * 8), seed=1)
    appearances = Counter(label for batch in epoch for label in np.unique(LABELS[batch]).tolist())
    assert appearances == {label: 3 for label in CLASS_SIZES}
    # A class's images are all used before any is used again: its first len(class) draws differ.
    dealt = np.concatenate(epoch)
    for label, size in CLASS_SIZES.items():
        if size >= PER_CLASS:
            drawn = dealt[LABELS[dealt] == label]
            assert len(set(drawn[:size].tolist())) == size


def test_order_follows_the_torch_seed() -> None:
    sampler = ClassBalancedSampler(LABELS, BATCH, PER_CLASS, length_before_new_iter=BATCH * 4)
    first, again, other = (np.concatenate(batches(sampler, seed)) for seed in (5, 5, 6))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "batch_size, per_class, message",
    [
        (70, 25, "multiple of images_per_class"),
        (75, 5, "needs 15 classes"),
    ],
)
def test_impossible_batches_are_config_errors(batch_size: int, per_class: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ClassBalancedSampler(LABELS, batch_size, per_class)


def test_the_runner_builds_it_by_name_with_the_epoch_length() -> None:
    sampler = build_sampler({"ClassBalancedSampler": {"images_per_class": PER_CLASS}}, LABELS, BATCH, 6, None)
    assert isinstance(sampler, ClassBalancedSampler)
    assert len(sampler) == BATCH * 6


def test_image_replacement_draws_each_image_independently() -> None:
    """Official samplers (classification, DAS): ``images_per_class`` uniform draws with replacement.
    For a class of n images, k draws hold n (1 - (1 - 1/n)^k) distinct images on average
    (n = 30, k = 25: 17.15), where distinct draws would give 25; every image equally likely."""
    sampler = ClassBalancedSampler(
        LABELS, BATCH, PER_CLASS, length_before_new_iter=BATCH * 400, image_replacement=True
    )
    distinct, drawn = [], Counter()
    for batch in batches(sampler, seed=2):
        per_class = Counter(LABELS[batch].tolist())
        assert len(per_class) == BATCH // PER_CLASS and set(per_class.values()) == {PER_CLASS}
        for label in (10, 11, 17):  # the classes of 30 images
            members = batch[LABELS[batch] == label]
            if len(members):
                distinct.append(len(set(members.tolist())))
                drawn.update(members.tolist())
        tiny = batch[LABELS[batch] == 16]  # a class of one image: that image 25 times
        assert len(tiny) in (0, PER_CLASS) and len(set(tiny.tolist())) <= 1
    expected = 30 * (1 - (1 - 1 / 30) ** 25)
    assert abs(np.mean(distinct) - expected) < 0.3, (np.mean(distinct), expected)
    counts = np.array(list(drawn.values()))
    assert len(counts) == 90  # every image of the three classes drawn
    assert counts.std() / counts.mean() < 0.15  # about uniform (each image ~ 270 +- 16 draws)


def test_class_replacement_lets_a_class_fill_two_slots_of_a_batch() -> None:
    """DAS's sampler draws each of a batch's class slots uniformly from all classes: with 8 classes
    and 3 slots a batch repeats a class with probability 1 - (7/8)(6/8) = 0.344."""
    sampler = ClassBalancedSampler(
        LABELS, BATCH, PER_CLASS, length_before_new_iter=BATCH * 2000, class_replacement=True
    )
    repeated = [len(set(LABELS[batch].tolist())) < 3 for batch in batches(sampler, seed=4)]
    assert abs(np.mean(repeated) - (1 - 7 / 8 * 6 / 8)) < 0.035
    # more slots than classes is allowed with replacement
    wide = ClassBalancedSampler(LABELS, 20, 2, class_replacement=True, image_replacement=True)
    torch.manual_seed(0)
    assert len(list(wide)) == len(wide)


def test_without_rounds_each_batch_draws_distinct_classes_afresh() -> None:
    """The official classification sampler: every batch an independent draw of 3 distinct
    classes of 8. Two consecutive batches then share a class with probability
    1 - C(5,3)/C(8,3) = 1 - 10/56, and each class is in a batch with probability 3/8; in rounds
    the first two batches never share one."""
    sampler = ClassBalancedSampler(
        LABELS,
        BATCH,
        PER_CLASS,
        length_before_new_iter=BATCH * 2000,
        image_replacement=True,
        class_rounds=False,
    )
    drawn = [set(LABELS[batch].tolist()) for batch in batches(sampler, seed=5)]
    assert all(len(classes) == 3 for classes in drawn)
    shared = [bool(a & b) for a, b in zip(drawn, drawn[1:])]
    assert abs(np.mean(shared) - (1 - 10 / 56)) < 0.03
    share = Counter(label for classes in drawn for label in classes)
    assert all(abs(count / len(drawn) - 3 / 8) < 0.03 for count in share.values()) and len(share) == 8
    rounds = ClassBalancedSampler(LABELS, BATCH, PER_CLASS, length_before_new_iter=BATCH * 2)
    for seed in range(20):
        first, second = (set(LABELS[batch].tolist()) for batch in batches(rounds, seed=seed))
        assert not first & second


def test_replacement_switches_must_be_booleans() -> None:
    with pytest.raises(ConfigError, match="image_replacement must be true or false"):
        ClassBalancedSampler(LABELS, BATCH, PER_CLASS, image_replacement="yes")
