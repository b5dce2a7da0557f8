"""Shared base of the managers that hold out a test part and cross-validate on the rest.

Arguments (the same for Index, ClassDisjoint, ClosedSet and MLRC, so that a config can swap one
for another and keep its keyword arguments):

- ``test_size`` in (0, 1): the fraction held out for testing;
- ``test_start_idx`` in [0, 1): where the test block starts, as a fraction of the list being split
  (0.5 = the test block starts half-way; the block wraps around the end of the list);
- ``num_training_partitions`` P >= 1: the number of cross-validation folds of the rest (P = 1:
  a single scheme that trains on all of it, without a ``"val"`` split);
- ``num_training_sets`` in 1..P: only the first this many folds are produced;
- ``hierarchy_level``: which label column to split on when labels are 2-D;
- ``shuffle``, ``random_seed``: permute the list (seeded, deterministic) before splitting.

Fractions are read as the decimal number written (0.29 of 100 is 29, not 28.999... -> 28).
Scheme names follow powerful-benchmarker: ``Test{test%}_{start%}_Partitions{P}_{fold}``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from dmlbench.errors import SplitError
from dmlbench.split_managers.base import SplitManager, SplitSchemes, check_int


def as_fraction(value: float) -> Fraction:
    """The decimal ``value`` as written, exactly (``0.29`` -> 29/100)."""
    return Fraction(repr(float(value)))


def floor_part(fraction: Fraction, count: int) -> int:
    return math.floor(fraction * count)


def ceil_part(fraction: Fraction, count: int) -> int:
    return math.ceil(fraction * count)


def kfold_chunks(count: int, num_folds: int) -> list[np.ndarray]:
    """Positions 0..count-1 cut into ``num_folds`` contiguous chunks, the first ``count % num_folds``
    one longer (scikit-learn's ``KFold`` without shuffling)."""
    sizes = [count // num_folds + (1 if fold < count % num_folds else 0) for fold in range(num_folds)]
    ends = np.cumsum(sizes)
    return [np.arange(end - size, end, dtype=np.int64) for size, end in zip(sizes, ends)]


def samples_of_classes(class_labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Sorted indices of the samples whose class is in ``classes``."""
    return np.flatnonzero(np.isin(class_labels, classes)).astype(np.int64)


class PartitionedSplitManager(SplitManager):
    """A test part (the same in every scheme) and P cross-validation folds of the rest."""

    def __init__(
        self,
        test_size: float = 0.5,
        test_start_idx: float = 0.5,
        num_training_partitions: int = 4,
        num_training_sets: int = 4,
        hierarchy_level: int = 0,
        shuffle: bool = False,
        random_seed: int = 0,
    ) -> None:
        super().__init__(hierarchy_level=hierarchy_level)
        owner = self.name
        self.test_size = self._check_fraction("test_size", test_size, allow_zero=False)
        self.test_start_idx = self._check_fraction("test_start_idx", test_start_idx, allow_zero=True)
        self.num_training_partitions = check_int(owner, "num_training_partitions", num_training_partitions, 1)
        self.num_training_sets = check_int(owner, "num_training_sets", num_training_sets, 1)
        if self.num_training_sets > self.num_training_partitions:
            raise SplitError(
                f"{owner}: num_training_sets={self.num_training_sets} is more than "
                f"num_training_partitions={self.num_training_partitions}; at most one training set per "
                "partition exists"
            )
        if not isinstance(shuffle, (bool, np.bool_)):
            raise SplitError(f"{owner}: shuffle={shuffle!r} must be true or false")
        self.shuffle = bool(shuffle)
        self.random_seed = check_int(owner, "random_seed", random_seed, 0)

    def _check_fraction(self, name: str, value: Any, allow_zero: bool) -> float:
        low = "0 <=" if allow_zero else "0 <"
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)
        ):
            raise SplitError(f"{self.name}: {name}={value!r} must be a number with {low} {name} < 1")
        value = float(value)
        if not (value >= 0 if allow_zero else value > 0) or not value < 1:
            raise SplitError(f"{self.name}: {name}={value!r} must satisfy {low} {name} < 1 (a fraction)")
        return value

    @property
    def test_fraction(self) -> Fraction:
        return as_fraction(self.test_size)

    @property
    def start_fraction(self) -> Fraction:
        return as_fraction(self.test_start_idx)

    def scheme_name(self, fold: int) -> str:
        test_percent = round(self.test_size * 100)
        start_percent = round(self.test_start_idx * 100)
        return f"Test{test_percent:02d}_{start_percent:02d}_Partitions{self.num_training_partitions}_{fold}"

    def folds_to_produce(self) -> range:
        return range(self.num_training_sets)

    def ordered(self, items: np.ndarray) -> np.ndarray:
        """``items`` as they are split: unchanged, or permuted with ``random_seed`` if shuffling."""
        if not self.shuffle:
            return items
        return np.random.default_rng(self.random_seed).permutation(items)

    def check_schemes(self, schemes: SplitSchemes, class_labels: np.ndarray) -> None:
        """Also: the test split is the same in every scheme, and validation splits of different
        folds share no sample."""
        super().check_schemes(schemes, class_labels)
        splits = list(schemes.values())
        for scheme_name, scheme in schemes.items():
            if not np.array_equal(scheme["test"], splits[0]["test"]):
                raise SplitError(
                    f"{self.name}: scheme {scheme_name} has a different test split than the first scheme"
                )
        vals = [(name, scheme["val"]) for name, scheme in schemes.items() if "val" in scheme]
        for i, (name_a, val_a) in enumerate(vals):
            for name_b, val_b in vals[i + 1 :]:
                if np.intersect1d(val_a, val_b).size:
                    raise SplitError(f"{self.name}: the validation splits of {name_a} and {name_b} overlap")
