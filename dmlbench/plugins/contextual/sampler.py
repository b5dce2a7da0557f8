"""Hierarchical batches: each half-batch holds classes of one super-class (contextual-similarity
paper, SOP and iNaturalist; official ``sampling.py``, ``HierarchicalSamplerBalanced``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from dmlbench.errors import ConfigError
from dmlbench.plugins.classification.sampler import _Deck
from dmlbench.registry import register


def super_labels_of(data_source: Any) -> np.ndarray | None:
    """The super-labels of the samples of ``data_source`` (a data set, or a subset of one with
    ``dataset`` and ``indices``), or ``None`` when it has none."""
    own = getattr(data_source, "super_labels", None)
    if own is not None:
        return np.asarray(own)
    parent, indices = getattr(data_source, "dataset", None), getattr(data_source, "indices", None)
    if parent is not None and indices is not None:
        parent_labels = super_labels_of(parent)
        return None if parent_labels is None else parent_labels[np.asarray(indices)]
    return None


@register("sampler")
class HierarchicalSampler(torch.utils.data.Sampler[int]):
    """Indices whose consecutive groups of ``batch_size`` are hierarchical batches.

    A batch is two halves; each half comes from one super-class (the two halves from two
    different super-classes) and holds ``batch_size / 2 / samples_per_class`` different classes
    of it, ``samples_per_class`` images each (SOP, 128: two halves of 16 classes x 4).

    - A half's super-class is drawn with probability proportional to the super-class's number of
      training images (the official sampler gives each super-class that share of the epoch's
      half-batches), the second half's from the other super-classes, renormalised.
    - Within a super-class, classes are dealt in shuffled rounds (every class once before any
      twice); a class's images likewise, across the batches it appears in.
    - An epoch is ``length_before_new_iter // batch_size`` batches (the runner passes
      ``batch_size * iterations_per_epoch``).

    Super-labels come from ``super_labels`` or from the data set (``data_source``: SOP's
    ``super_class_id``, iNaturalist's super-category). A super-class with fewer classes than a
    half-batch needs is an error (the official sampler would repeat classes within a half).
    Randomness comes from torch's global generator (seeded per epoch by the trainer).
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        batch_size: int,
        samples_per_class: int = 4,
        super_labels: Sequence[int] | np.ndarray | None = None,
        data_source: Any = None,
        length_before_new_iter: int | None = None,
    ) -> None:
        self.labels = np.asarray(labels)
        self.batch_size = int(batch_size)
        self.samples_per_class = int(samples_per_class)
        if (
            self.samples_per_class < 1
            or self.batch_size < 2
            or self.batch_size % (2 * self.samples_per_class)
        ):
            raise ConfigError(
                f"HierarchicalSampler: batch_size={batch_size} must be a positive multiple of "
                f"2 x samples_per_class={samples_per_class} (two halves of whole classes)"
            )
        self.classes_per_half = self.batch_size // 2 // self.samples_per_class
        supers = np.asarray(super_labels) if super_labels is not None else super_labels_of(data_source)
        if supers is None:
            raise ConfigError(
                "HierarchicalSampler: the training data has no super-labels (SOP, iNaturalist and "
                "CSVDataset with a super_label column have them)"
            )
        if supers.shape != self.labels.shape:
            raise ConfigError(
                f"HierarchicalSampler: {supers.size} super-labels for {self.labels.size} samples"
            )
        self.super_classes = np.unique(supers)
        if len(self.super_classes) < 2:
            raise ConfigError(
                "HierarchicalSampler: the training split has a single super-class; a batch needs two"
            )
        self.classes_of: list[np.ndarray] = []
        for super_class in self.super_classes:
            classes = np.unique(self.labels[supers == super_class])
            if len(classes) < self.classes_per_half:
                raise ConfigError(
                    f"HierarchicalSampler: super-class {super_class} has {len(classes)} classes in the training split, "
                    f"but a half-batch needs {self.classes_per_half} (batch_size {batch_size} / 2 / samples_per_class "
                    f"{samples_per_class}); lower batch_size or raise samples_per_class"
                )
            self.classes_of.append(classes)
        mixed = [c for c in np.unique(self.labels) if len(np.unique(supers[self.labels == c])) > 1]
        if mixed:
            raise ConfigError(f"HierarchicalSampler: class {mixed[0]} belongs to several super-classes")
        counts = np.array([np.sum(supers == s) for s in self.super_classes], dtype=np.float64)
        self.super_weights = counts / counts.sum()
        self.members = {int(c): np.flatnonzero(self.labels == c) for c in np.unique(self.labels)}
        samples = len(self.labels) if length_before_new_iter is None else int(length_before_new_iter)
        self.num_batches = samples // self.batch_size
        if self.num_batches < 1:
            raise ConfigError(
                f"HierarchicalSampler: an epoch of {samples} samples holds no batch of {batch_size}"
            )

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def _super_pair(self, rng: np.random.Generator) -> tuple[int, int]:
        first = int(rng.choice(len(self.super_classes), p=self.super_weights))
        rest = self.super_weights.copy()
        rest[first] = 0.0
        second = int(rng.choice(len(self.super_classes), p=rest / rest.sum()))
        return first, second

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        class_decks = [_Deck(classes, rng) for classes in self.classes_of]
        image_decks: dict[int, _Deck] = {}
        for _ in range(self.num_batches):
            for position in self._super_pair(rng):
                for label in class_decks[position].draw(self.classes_per_half):
                    deck = image_decks.get(label)
                    if deck is None:
                        deck = image_decks[label] = _Deck(self.members[label], rng)
                    yield from (int(index) for index in deck.draw(self.samples_per_class))
