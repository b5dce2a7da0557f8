"""The data set's own split, unchanged: one scheme named ``PredefinedSplitScheme_0``.

Each sample's ``official_split`` value names its split: ``train``/``test`` for CUB, Cars and SOP,
``train``/``query``/``gallery`` for In-Shop (evaluated query against gallery). A data set that
defines ``val`` gets a validation split; otherwise there is none.
"""

from __future__ import annotations

import numpy as np

from dmlbench.errors import SplitError
from dmlbench.registry import register
from dmlbench.split_managers.base import SplitManager, SplitSchemes

#: Split names in the order they are listed; other names follow alphabetically.
KNOWN_SPLIT_ORDER = ("train", "val", "test", "query", "gallery")


@register("split_manager")
class PredefinedSplitManager(SplitManager):
    """Uses ``official_split`` (one split name per sample) as the only split scheme."""

    scheme = "PredefinedSplitScheme_0"

    def _make_schemes(self, class_labels: np.ndarray, official_split: np.ndarray | None) -> SplitSchemes:
        if official_split is None:
            raise SplitError(
                "PredefinedSplitManager: this data set has no official split; use MLRCSplitManager or "
                "ClassDisjointSplitManager"
            )
        names = np.asarray(official_split).astype(str)
        if names.shape != class_labels.shape:
            raise SplitError(
                f"PredefinedSplitManager: official_split has {names.size} entries for {class_labels.size} samples"
            )
        present = set(np.unique(names).tolist())
        if "" in present:
            raise SplitError(
                f"PredefinedSplitManager: {int(np.sum(names == ''))} samples have an empty official split name"
            )
        if "train" not in present:
            raise SplitError(
                f"PredefinedSplitManager: the official split has no 'train' samples (it has {sorted(present)})"
            )
        if not present.difference({"train", "val"}):
            raise SplitError(
                f"PredefinedSplitManager: the official split has nothing to test on (only {sorted(present)}); "
                "use MLRCSplitManager to hold out classes"
            )
        if len(present.intersection({"query", "gallery"})) == 1:
            raise SplitError(
                f"PredefinedSplitManager: the official split has {sorted(present)}; 'query' and 'gallery' "
                "come together (In-Shop evaluates queries against the gallery)"
            )
        order = [name for name in KNOWN_SPLIT_ORDER if name in present]
        order += sorted(present.difference(KNOWN_SPLIT_ORDER))
        return {self.scheme: {name: np.flatnonzero(names == name).astype(np.int64) for name in order}}
