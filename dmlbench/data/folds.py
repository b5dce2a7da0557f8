"""One fold of an experiment: a split scheme's sample indices and its training label map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FoldData:
    """The split scheme ``scheme``: sample indices per split (train, val, test, or query and
    gallery) and ``label_map``, original label -> contiguous training label (0..C-1)."""

    scheme: str
    indices: dict[str, np.ndarray]
    label_map: dict[int, int]


def evaluation_roles(indices: dict[str, np.ndarray], split: str) -> dict[str, np.ndarray] | None:
    """How ``split`` is scored, from a fold's ``indices`` per split: ``{"self": idx}`` (every
    sample against the others), or ``{"query": idx, "gallery": idx}`` when ``split`` is ``test``
    and the split manager made query and gallery splits instead (In-Shop); None when neither."""
    if split in indices:
        return {"self": indices[split]}
    if split == "test" and {"query", "gallery"} <= set(indices):
        return {"query": indices["query"], "gallery": indices["gallery"]}
    return None
