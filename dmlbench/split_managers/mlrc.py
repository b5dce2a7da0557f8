"""The class split of the Metric Learning Reality Check (Musgrave et al., ECCV 2020).

With the N class labels sorted, T = floor(test_size * N) and s = floor(test_start_idx * N):

- test = the T classes at sorted positions s, s+1, ..., s+T-1 (mod N);
- trainval = the other M = N - T classes, in ascending order;
- every fold has V = floor(M / P) validation and M - V training classes; fold p starts at
  a_p = floor(p * M / P): train = trainval positions a_p .. a_p + M - V - 1 (mod M), val = the
  next V positions (mod M), i.e. the V classes just before a_p.

"Right" means, for any test_size and test_start_idx: the test block has exactly T classes
starting at s; every fold's train and val together are exactly the M non-test classes (none
lost, none shared with test); train and val are class-disjoint; the validation sets of different
folds are disjoint (a_p - a_{p-1} >= V); and V = (1/P)(1 - test_size) * N whenever that is whole.
For CUB (labels 0-199) this gives validation classes 75-99, 0-24, 25-49, 50-74; for Cars (1-196)
75-98, 1-24, 26-49, 50-73.

powerful-benchmarker 0.9 took trainval = the first T sorted classes (right only for
test_size 0.5) and started the test block at N - s (mirrored).
"""

from __future__ import annotations

import numpy as np

from dmlbench.errors import SplitError
from dmlbench.registry import register
from dmlbench.split_managers.base import SplitSchemes
from dmlbench.split_managers.partitioned import PartitionedSplitManager, floor_part, samples_of_classes


@register("split_manager")
class MLRCSplitManager(PartitionedSplitManager):
    """Class-disjoint MLRC folds: wrapped contiguous class ranges of the sorted non-test classes."""

    class_disjoint = True

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
        super().__init__(
            test_size,
            test_start_idx,
            num_training_partitions,
            num_training_sets,
            hierarchy_level,
            shuffle,
            random_seed,
        )
        if self.shuffle:
            raise SplitError(
                "MLRCSplitManager: shuffle=True is not supported (MLRC folds are contiguous ranges of "
                "sorted classes); use ClassDisjointSplitManager for shuffled class folds"
            )

    def class_ranges(
        self, classes: np.ndarray
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray | None]]]:
        """(test classes, [(train classes, val classes or None) per produced fold]) for the sorted
        class list ``classes``."""
        count = len(classes)
        num_test = floor_part(self.test_fraction, count)
        if num_test == 0:
            raise SplitError(
                f"MLRCSplitManager: test_size={self.test_size} of {count} classes rounds down to 0 test "
                f"classes; raise test_size to at least {1 / count:.3g}"
            )
        if num_test >= count:
            raise SplitError(
                f"MLRCSplitManager: test_size={self.test_size} leaves no class of {count} to train on"
            )
        start = floor_part(self.start_fraction, count)
        in_test = np.zeros(count, dtype=bool)
        in_test[(start + np.arange(num_test)) % count] = True
        test, trainval = classes[in_test], classes[~in_test]
        folds = self.num_training_partitions
        if folds == 1:
            return test, [(trainval, None)]
        num_trainval = len(trainval)
        num_val = num_trainval // folds
        if num_val == 0:
            raise SplitError(
                f"MLRCSplitManager: num_training_partitions={folds} folds need at least {folds} classes "
                f"outside the test split, but test_size={self.test_size} leaves {num_trainval} of {count}; "
                "use fewer partitions or a smaller test_size"
            )
        num_train = num_trainval - num_val
        produced: list[tuple[np.ndarray, np.ndarray | None]] = []
        for fold in self.folds_to_produce():
            first = fold * num_trainval // folds
            train = trainval[(first + np.arange(num_train)) % num_trainval]
            val = trainval[(first + num_train + np.arange(num_val)) % num_trainval]
            produced.append((np.sort(train), np.sort(val)))
        return test, produced

    def _make_schemes(self, class_labels: np.ndarray, official_split: np.ndarray | None) -> SplitSchemes:
        test, folds = self.class_ranges(np.unique(class_labels))
        test_samples = samples_of_classes(class_labels, test)
        schemes: SplitSchemes = {}
        for fold, (train, val) in zip(self.folds_to_produce(), folds):
            scheme = {"train": samples_of_classes(class_labels, train)}
            if val is not None:
                scheme["val"] = samples_of_classes(class_labels, val)
            scheme["test"] = test_samples.copy()
            schemes[self.scheme_name(fold)] = scheme
        return schemes
