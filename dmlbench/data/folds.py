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
