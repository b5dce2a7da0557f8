"""A record of which classes and samples each split holds, saved with the experiment, and the
labels a split is made on (the split managers of :mod:`dmlbench.split_managers` use them too).

For every scheme and split: the sorted class list, the number of samples, and
``sha256(canonical JSON of {"classes": [...], "indices": [...]})`` where the JSON has sorted keys,
no spaces (separators ``,`` and ``:``) and plain integers, so that the same split always gives
the same hash and any change to its classes or samples changes it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from dmlbench.errors import SplitError

#: ``{scheme_name: {split_name: sorted int64 sample indices}}``
SplitSchemes = dict[str, dict[str, np.ndarray]]


def labels_at_level(owner: str, labels: Any, hierarchy_level: int) -> np.ndarray:
    """The 1-D integer class labels a manager splits on.

    ``labels`` is ``(N,)`` or ``(N, L)``; for the 2-D form, column ``hierarchy_level`` is used
    (e.g. ``np.stack([labels, super_labels], 1)`` with ``hierarchy_level=1`` splits SOP by
    super-class, so that every class of a super-class lands in the same split).
    """
    array = np.asarray(labels)
    if array.ndim not in (1, 2) or array.shape[0] == 0:
        raise SplitError(
            f"{owner}: expected a non-empty 1-D (or 2-D, samples x levels) label array, got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise SplitError(f"{owner}: class labels must be integers, got dtype {array.dtype}")
    if array.ndim == 1:
        if hierarchy_level != 0:
            raise SplitError(
                f"{owner}: hierarchy_level={hierarchy_level} needs 2-D labels (samples x levels), "
                "but the labels are 1-D; use hierarchy_level 0"
            )
        return array.astype(np.int64, copy=False)
    if hierarchy_level >= array.shape[1]:
        raise SplitError(
            f"{owner}: hierarchy_level={hierarchy_level} but the labels have only {array.shape[1]} "
            f"levels (0..{array.shape[1] - 1})"
        )
    return array[:, hierarchy_level].astype(np.int64)


def split_hash(classes: list[int], indices: list[int]) -> str:
    """sha256 hex digest of the canonical JSON of a split's class list and sample indices."""
    payload = json.dumps({"classes": classes, "indices": indices}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def split_manifest(splits: SplitSchemes, labels: np.ndarray, hierarchy_level: int = 0) -> dict[str, Any]:
    """``{scheme: {split: {"classes": [...], "num_samples": n, "sha256": hex}}}`` (plain types,
    ready for JSON/YAML); ``labels`` as given to :meth:`SplitManager.split`."""
    class_labels = labels_at_level("split_manifest", labels, hierarchy_level)
    manifest: dict[str, Any] = {}
    for scheme_name, scheme in splits.items():
        manifest[scheme_name] = {}
        for split_name, indices in scheme.items():
            index_list = [int(i) for i in np.asarray(indices)]
            classes = sorted({int(c) for c in class_labels[np.asarray(indices, dtype=np.int64)]})
            manifest[scheme_name][split_name] = {
                "classes": classes,
                "num_samples": len(index_list),
                "sha256": split_hash(classes, index_list),
            }
    return manifest
