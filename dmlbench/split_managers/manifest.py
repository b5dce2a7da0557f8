"""A record of which classes and samples each split holds, saved with the experiment.

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

from dmlbench.split_managers.base import SplitSchemes, labels_at_level


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
