"""The MLRC "concatenated" ensemble of several fold models."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def concatenate_normalized(embeddings: Sequence[Tensor]) -> Tensor:
    """Concatenate per-model embeddings, each L2-normalised first, then normalise the result:
    e = n([n(e_1), ..., n(e_P)]) with n(x) = x / ||x||_2 (the 4 x 128 -> 512-d MLRC ensemble)."""
    if not embeddings:
        raise ValueError("no embeddings to concatenate")
    normalized = [torch.nn.functional.normalize(e.float(), p=2, dim=1) for e in embeddings]
    return torch.nn.functional.normalize(torch.cat(normalized, dim=1), p=2, dim=1)
