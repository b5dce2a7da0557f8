"""Closed-set splits: every class is in train, val and test, each sample in exactly one.

powerful-benchmarker 0.9's ClosedSetSplitManager made a stratified random train/test split and
stratified K folds of the rest. Here the same stratification is done per class with contiguous
blocks, deterministic unless ``shuffle`` (seeded) is set. For each class with n samples (in
data-set order, or permuted):

- test = the ``ceil(test_size * n)`` samples starting at position ``floor(test_start_idx * n)``
  (wrapping);
- trainval = the rest, cut into P contiguous chunks; fold p validates on chunk p of every class
  and trains on the rest.

Every class therefore needs at least 1 test sample and 2 train+val samples (one to train on in
every fold, one to validate); :class:`SplitError` names the first class that has too few.
"""

from __future__ import annotations

import numpy as np

from dmlbench.errors import SplitError
from dmlbench.registry import register
from dmlbench.split_managers.base import SplitSchemes
from dmlbench.split_managers.partitioned import PartitionedSplitManager, ceil_part, floor_part, kfold_chunks


@register("split_manager")
class ClosedSetSplitManager(PartitionedSplitManager):
    """Stratified sample splits: train, val and test all contain every class."""

    def _make_schemes(self, class_labels: np.ndarray, official_split: np.ndarray | None) -> SplitSchemes:
        folds = self.num_training_partitions
        needed = 1 if folds == 1 else 2
        test_parts: list[np.ndarray] = []
        train_parts: dict[int, list[np.ndarray]] = {fold: [] for fold in self.folds_to_produce()}
        val_parts: dict[int, list[np.ndarray]] = {fold: [] for fold in self.folds_to_produce()}
        rng = np.random.default_rng(self.random_seed)
        classes = np.unique(class_labels)
        too_small = []
        for label in classes:
            samples = np.flatnonzero(class_labels == label).astype(np.int64)
            if self.shuffle:
                samples = rng.permutation(samples)
            count = len(samples)
            num_test = ceil_part(self.test_fraction, count)
            if count - num_test < needed:
                too_small.append((int(label), count))
                continue
            rotated = np.roll(samples, -floor_part(self.start_fraction, count))
            test_parts.append(rotated[:num_test])
            trainval = rotated[num_test:]
            chunks = kfold_chunks(len(trainval), folds)
            for fold in self.folds_to_produce():
                in_val = np.zeros(len(trainval), dtype=bool)
                if folds > 1:
                    in_val[chunks[fold]] = True
                train_parts[fold].append(trainval[~in_val])
                val_parts[fold].append(trainval[in_val])
        if too_small:
            label, count = too_small[0]
            raise SplitError(
                f"ClosedSetSplitManager: class {label} has {count} samples, but test_size={self.test_size} "
                f"with {folds} partitions needs 1 test sample plus {needed} for train+val "
                f"({len(too_small)} of {len(classes)} classes are too small); drop small classes or lower "
                "test_size"
            )
        test = np.sort(np.concatenate(test_parts))
        schemes: SplitSchemes = {}
        for fold in self.folds_to_produce():
            scheme = {"train": np.sort(np.concatenate(train_parts[fold]))}
            if folds > 1:
                val = np.sort(np.concatenate(val_parts[fold]))
                if val.size == 0:
                    raise SplitError(
                        f"ClosedSetSplitManager: fold {fold} of {folds} gets no validation sample: every class "
                        f"has at most {fold} train+val samples; use fewer partitions"
                    )
                scheme["val"] = val
            scheme["test"] = test.copy()
            schemes[self.scheme_name(fold)] = scheme
        return schemes

    def check_schemes(self, schemes: SplitSchemes, class_labels: np.ndarray) -> None:
        """Also: the classes of every split are exactly the data set's classes, except that a
        validation split may miss the classes too small to reach its chunk."""
        super().check_schemes(schemes, class_labels)
        all_classes = np.unique(class_labels)
        for scheme_name, scheme in schemes.items():
            for split_name in ("train", "test"):
                if not np.array_equal(np.unique(class_labels[scheme[split_name]]), all_classes):
                    raise SplitError(
                        f"ClosedSetSplitManager: scheme {scheme_name}: {split_name} misses a class"
                    )
