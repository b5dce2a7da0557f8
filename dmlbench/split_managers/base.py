"""The split-manager contract: labels in, named train/val/test index sets out, checked.

A split manager turns a data set's labels (and, for :class:`PredefinedSplitManager`, its official
split) into one or more *split schemes*::

    {"Test50_50_Partitions4_0": {"train": idx, "val": idx, "test": idx}, ...}

where every ``idx`` is a sorted, duplicate-free int64 array of sample indices into the data set.
A split is absent when it does not exist (no ``"val"`` in a single train/test scheme). Before
returning, :meth:`SplitManager.split` checks what every manager promises (no empty split, no
sample in two splits of a scheme) and what the subclass promises on top (e.g. no class in two
splits), raising :class:`~dmlbench.errors.SplitError` otherwise.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from dmlbench.data.split_manifest import SplitSchemes, labels_at_level
from dmlbench.errors import SplitError


def check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; bools and floats are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise SplitError(f"{owner}: {name}={value!r} must be an integer >= {minimum}")
    if value < minimum:
        raise SplitError(f"{owner}: {name}={value!r} must be >= {minimum}")
    return int(value)


class SplitManager:
    """Base class: subclasses implement :meth:`_make_schemes` and set :attr:`class_disjoint`."""

    #: True when no class may appear in two splits of the same scheme (checked in :meth:`split`).
    class_disjoint: bool = False

    def __init__(self, hierarchy_level: int = 0) -> None:
        self.hierarchy_level = check_int(self.name, "hierarchy_level", hierarchy_level, 0)

    @property
    def name(self) -> str:
        return type(self).__name__

    def split(self, labels: np.ndarray, official_split: np.ndarray | None = None) -> SplitSchemes:
        """Split schemes for a data set with these ``labels`` (and ``official_split``, one str
        per sample, used only by managers that follow the data set's own split)."""
        class_labels = labels_at_level(self.name, labels, self.hierarchy_level)
        schemes = self._make_schemes(class_labels, official_split)
        self.check_schemes(schemes, class_labels)
        return schemes

    def _make_schemes(self, class_labels: np.ndarray, official_split: np.ndarray | None) -> SplitSchemes:
        raise NotImplementedError

    def check_schemes(self, schemes: SplitSchemes, class_labels: np.ndarray) -> None:
        """Raise :class:`SplitError` unless every split is a non-empty sorted index set, splits of
        a scheme share no sample, and (if :attr:`class_disjoint`) no class."""
        if not schemes:
            raise SplitError(f"{self.name}: produced no split scheme")
        num_samples = len(class_labels)
        for scheme_name, splits in schemes.items():
            for split_name, indices in splits.items():
                where = f"{self.name}: scheme {scheme_name}, split {split_name!r}"
                if not isinstance(indices, np.ndarray) or indices.dtype != np.int64 or indices.ndim != 1:
                    raise SplitError(f"{where}: indices must be a 1-D int64 array")
                if indices.size == 0:
                    raise SplitError(f"{where} is empty")
                if np.any(np.diff(indices) <= 0):
                    raise SplitError(f"{where}: indices must be sorted and free of duplicates")
                if indices[0] < 0 or indices[-1] >= num_samples:
                    raise SplitError(f"{where}: index out of range for {num_samples} samples")
            for (name_a, idx_a), (name_b, idx_b) in itertools.combinations(splits.items(), 2):
                shared = np.intersect1d(idx_a, idx_b)
                if shared.size:
                    raise SplitError(
                        f"{self.name}: scheme {scheme_name}: {shared.size} samples are in both "
                        f"{name_a!r} and {name_b!r} (e.g. sample {shared[0]})"
                    )
                if self.class_disjoint:
                    shared_classes = np.intersect1d(class_labels[idx_a], class_labels[idx_b])
                    if shared_classes.size:
                        raise SplitError(
                            f"{self.name}: scheme {scheme_name}: {shared_classes.size} classes are in "
                            f"both {name_a!r} and {name_b!r} (e.g. class {shared_classes[0]})"
                        )
