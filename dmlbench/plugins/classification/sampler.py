"""Class-balanced batches for the classification baseline (Zhai & Wu, BMVC 2019)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from dmlbench.errors import ConfigError
from dmlbench.registry import register


class _Deck:
    """Deals the items of ``items`` in shuffled rounds: every item once per round, a new random
    order each round, so that over many calls the items are used equally often.

    ``draw(k)`` with ``k <= len(items)`` returns ``k`` different items (an item already dealt in
    this call is moved behind the others of a fresh round). With ``k > len(items)`` it returns
    every item ``k // len`` times plus ``k % len`` different ones: counts differ by at most one.
    """

    def __init__(self, items: np.ndarray, rng: np.random.Generator) -> None:
        self.items = np.asarray(items)
        self.rng = rng
        self.queue: list[int] = []

    def draw(self, count: int) -> list[int]:
        size = len(self.items)
        if count > size:
            repeats, remainder = divmod(count, size)
            dealt = [int(i) for _ in range(repeats) for i in self.rng.permutation(self.items)]
            return dealt + [int(i) for i in self.rng.permutation(self.items)[:remainder]]
        chosen: list[int] = []
        while len(chosen) < count:
            if not self.queue:
                taken = set(chosen)
                fresh = self.rng.permutation(self.items).tolist()
                self.queue = [i for i in fresh if i not in taken] + [i for i in fresh if i in taken]
            chosen.append(int(self.queue.pop(0)))
        return chosen


@register("sampler")
class ClassBalancedSampler(torch.utils.data.Sampler[int]):
    """Indices whose consecutive groups of ``batch_size`` are class-balanced batches.

    Each batch holds ``batch_size / images_per_class`` different classes and ``images_per_class``
    images of each (75 = 3 x 25 for CUB/Cars, 15 x 5 for SOP/In-Shop in the paper).

    - Classes are dealt in shuffled rounds: every class appears once before any appears twice.
    - ``class_rounds: false``: instead, each batch's classes are a fresh uniform draw of distinct
      classes, independent of the other batches, as the classification baseline's official
      sampler (``np.random.choice(classes, n, replace=False)`` per batch).
    - A class's images are dealt the same way, across the batches it appears in: within one batch
      its images are all different when it has at least ``images_per_class`` of them; a smaller
      class contributes all its images, repeated as evenly as possible to fill its share.
    - An epoch is ``length_before_new_iter // batch_size`` batches (the runner passes
      ``batch_size * iterations_per_epoch``); without it, one pass: ``len(labels) // batch_size``.
    - ``image_replacement: true``: instead, each of a class's ``images_per_class`` images is an
      independent uniform draw from the class, with replacement (an image can appear twice in a
      batch), as the official samplers of the classification baseline (azgo14/
      classification_metric_learning, metric_learning/sampler.py: ``np.random.choice(...,
      replace=True)``) and of DAS (lizhaoliu-Lec/DAS, datasampler/class_random_sampler.py).
    - ``class_replacement: true``: instead, each class slot of a batch is an independent uniform
      draw from all classes (a class can fill two slots of a batch), as the DAS sampler
      (``random.choice(self.classes)`` per slot).

    Randomness comes from torch's global generator (seeded per epoch by the trainer).
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        batch_size: int,
        images_per_class: int,
        length_before_new_iter: int | None = None,
        image_replacement: bool = False,
        class_replacement: bool = False,
        class_rounds: bool = True,
    ) -> None:
        self.labels = np.asarray(labels)
        self.batch_size = int(batch_size)
        self.images_per_class = int(images_per_class)
        if self.images_per_class < 1 or self.batch_size < 1 or self.batch_size % self.images_per_class:
            raise ConfigError(
                f"ClassBalancedSampler: batch_size={batch_size} must be a positive multiple of "
                f"images_per_class={images_per_class}"
            )
        for name, value in (
            ("image_replacement", image_replacement),
            ("class_replacement", class_replacement),
            ("class_rounds", class_rounds),
        ):
            if not isinstance(value, bool):
                raise ConfigError(f"ClassBalancedSampler: {name} must be true or false, got {value!r}")
        self.image_replacement = image_replacement
        self.class_replacement = class_replacement
        self.class_rounds = class_rounds
        self.classes_per_batch = self.batch_size // self.images_per_class
        self.classes, inverse = np.unique(self.labels, return_inverse=True)
        if self.classes_per_batch > len(self.classes) and not class_replacement:
            raise ConfigError(
                f"ClassBalancedSampler: a batch of {batch_size} with images_per_class={images_per_class} needs "
                f"{self.classes_per_batch} classes, but the training split has {len(self.classes)}; lower "
                "batch_size or raise images_per_class"
            )
        self.members = [np.flatnonzero(inverse == position) for position in range(len(self.classes))]
        samples = len(self.labels) if length_before_new_iter is None else int(length_before_new_iter)
        self.num_batches = samples // self.batch_size
        if self.num_batches < 1:
            raise ConfigError(
                f"ClassBalancedSampler: an epoch of {samples} samples holds no batch of {batch_size}"
            )

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        seed = int(torch.randint(0, 2**62, (1,)).item())
        rng = np.random.default_rng(seed)
        class_deck = _Deck(np.arange(len(self.classes)), rng)
        image_decks: dict[int, _Deck] = {}
        for _ in range(self.num_batches):
            if self.class_replacement:
                positions = rng.integers(0, len(self.classes), self.classes_per_batch).tolist()
            elif not self.class_rounds:
                positions = rng.choice(len(self.classes), self.classes_per_batch, replace=False).tolist()
            else:
                positions = class_deck.draw(self.classes_per_batch)
            for position in positions:
                if self.image_replacement:
                    members = self.members[position]
                    yield from (int(members[k]) for k in rng.integers(0, len(members), self.images_per_class))
                    continue
                deck = image_decks.get(position)
                if deck is None:
                    deck = image_decks[position] = _Deck(self.members[position], rng)
                yield from (int(index) for index in deck.draw(self.images_per_class))
