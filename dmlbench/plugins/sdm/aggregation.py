"""SDM's per-pair soft worst case over views, and the distance that hands it to a loss.

For a pair (i, j) with per-view values m_v (distances or similarities, v = 1..V)::

    soft maximum  sum_v softmax_v( alpha * m_v) * m_v    (-> max_v m_v as alpha -> inf)
    soft minimum  sum_v softmax_v(-alpha * m_v) * m_v    (-> min_v m_v as alpha -> inf)

The worst case of a positive pair (same label) is its largest distance / smallest similarity,
that of a negative pair its smallest distance / largest similarity. Both tend to the mean over
views as alpha -> 0, and with one view both are that view's value exactly.
"""

from __future__ import annotations

import torch
from pytorch_metric_learning.distances import BaseDistance
from torch import Tensor

from dmlbench.training.plugins import MultiViewDistance


def soft_worst_case(matrices: Tensor, same_label: Tensor, alpha: float, is_similarity: bool) -> Tensor:
    """Per-pair soft worst case of ``matrices`` [V, N, N] over views (dim 0).

    ``same_label`` [N, N] selects the positive pairs. Distances: soft maximum for positives,
    soft minimum for negatives; similarities (``is_similarity``): the other way round.
    """
    take_maximum = same_label != is_similarity
    sign = torch.where(take_maximum, 1.0, -1.0).to(matrices.dtype)
    weights = torch.softmax(sign * alpha * matrices, dim=0)
    return (weights * matrices).sum(dim=0)


class SoftWorstCaseDistance(MultiViewDistance):
    """The loss's own distance (e.g. LpDistance, CosineSimilarity), aggregated over the views
    of the batch by :func:`soft_worst_case` with temperature ``alpha``."""

    def __init__(self, base: BaseDistance, alpha: float = 32.0, role: str = "loss") -> None:
        super().__init__(base, role)
        self.alpha = float(alpha)

    def aggregate(self, matrices: Tensor, same_label: Tensor) -> Tensor:
        return soft_worst_case(matrices, same_label, self.alpha, is_similarity=self.is_inverted)
