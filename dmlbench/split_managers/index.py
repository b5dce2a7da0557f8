"""Contiguous-block splits of a list: IndexSplitManager (samples) and ClassDisjointSplitManager
(classes), as powerful-benchmarker 0.9 made them, with its mirrored ``test_start_idx`` fixed.

For a list of n items (sample indices, or the sorted class labels), optionally shuffled:

- test = the ``ceil(test_size * n)`` items starting at position ``floor(test_start_idx * n)``,
  wrapping around the end (scikit-learn's ``train_test_split`` rounds the test part up, too);
- trainval = the other items, in list order starting right after the test block (wrapping);
- fold p of P: val = the p-th of P contiguous chunks of trainval (the first ``len % P`` chunks
  one longer, as ``KFold``), train = the rest of trainval.

With ``shuffle`` the list is first permuted by ``numpy.random.default_rng(random_seed)``
(reproducible, but not the same permutation as powerful-benchmarker's scikit-learn shuffling).

powerful-benchmarker 0.9 rolled the list by ``start - size`` instead of ``-(start + size)``, so
its test block began at ``n - floor(test_start_idx * n)`` (mirrored); the two agree only for
``test_start_idx`` 0 or 0.5 (with ``test_size * n`` whole).
"""

from __future__ import annotations

import numpy as np

from dmlbench.errors import SplitError
from dmlbench.registry import register
from dmlbench.split_managers.base import SplitSchemes
from dmlbench.split_managers.partitioned import (
    PartitionedSplitManager,
    ceil_part,
    floor_part,
    kfold_chunks,
    samples_of_classes,
)


class BlockSplitManager(PartitionedSplitManager):
    """Holds out one contiguous block of a list for testing and K-folds the rest."""

    #: what the split list holds, for messages
    unit = "items"

    def split_list(self, items: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray | None]]]:
        """(test items, [(train items, val items or None) per produced fold])."""
        items = self.ordered(items)
        count = len(items)
        num_test = ceil_part(self.test_fraction, count)
        if num_test >= count:
            raise SplitError(
                f"{self.name}: test_size={self.test_size} of {count} {self.unit} puts all of them in the "
                "test split, leaving nothing to train on; lower test_size"
            )
        start = floor_part(self.start_fraction, count)
        rotated = np.roll(items, -start)
        test, trainval = rotated[:num_test], rotated[num_test:]
        folds = self.num_training_partitions
        if folds == 1:
            return test, [(trainval, None)]
        if len(trainval) < folds:
            raise SplitError(
                f"{self.name}: num_training_partitions={folds} folds need at least {folds} {self.unit} "
                f"outside the test split, but test_size={self.test_size} leaves {len(trainval)} of {count}; "
                "use fewer partitions or a smaller test_size"
            )
        chunks = kfold_chunks(len(trainval), folds)
        produced: list[tuple[np.ndarray, np.ndarray | None]] = []
        for fold in self.folds_to_produce():
            in_val = np.zeros(len(trainval), dtype=bool)
            in_val[chunks[fold]] = True
            produced.append((trainval[~in_val], trainval[in_val]))
        return test, produced

    def to_samples(self, class_labels: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def items_to_split(self, class_labels: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _make_schemes(self, class_labels: np.ndarray, official_split: np.ndarray | None) -> SplitSchemes:
        test, folds = self.split_list(self.items_to_split(class_labels))
        test_samples = self.to_samples(class_labels, test)
        schemes: SplitSchemes = {}
        for fold, (train, val) in zip(self.folds_to_produce(), folds):
            scheme = {"train": self.to_samples(class_labels, train)}
            if val is not None:
                scheme["val"] = self.to_samples(class_labels, val)
            scheme["test"] = test_samples.copy()
            schemes[self.scheme_name(fold)] = scheme
        return schemes


@register("split_manager")
class IndexSplitManager(BlockSplitManager):
    """Splits sample positions 0..N-1 (classes may be shared between splits)."""

    unit = "samples"

    def items_to_split(self, class_labels: np.ndarray) -> np.ndarray:
        return np.arange(len(class_labels), dtype=np.int64)

    def to_samples(self, class_labels: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.sort(items).astype(np.int64)


@register("split_manager")
class ClassDisjointSplitManager(BlockSplitManager):
    """Splits the sorted class list, so train, val and test never share a class."""

    unit = "classes"
    class_disjoint = True

    def items_to_split(self, class_labels: np.ndarray) -> np.ndarray:
        return np.unique(class_labels)

    def to_samples(self, class_labels: np.ndarray, items: np.ndarray) -> np.ndarray:
        return samples_of_classes(class_labels, items)
