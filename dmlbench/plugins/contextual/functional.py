"""The Hybrid loss of "Supervised Metric Learning for Retrieval via Contextual Similarity
Optimization" (Liao, Tsiligkaridis, Kulis, ICML 2023) as pure functions of a batch.

Notation (B samples; docs/methods/contextual.md has the derivation and the sources):

- ``S = F F^T`` for L2-normalised embeddings ``F`` [B, d]; ``W_ij = 1[y_i = y_j]`` (diagonal
  included); ``D = max(2 - 2 S, 0)`` (squared Euclidean distance on the unit sphere).
- ``N = H(d_(k)(i) + eps - D_ij)``: the k-neighbourhood of each row i, ``d_(k)(i)`` the k-th
  smallest entry of row i of D (the sample itself counts, ``D_ii = 0``), ``eps`` a tolerance.
  ``H`` is a hard step forward and a straight-through gradient of fixed magnitude backward
  (:func:`straight_through_step`); the threshold ``d_(k)`` is a constant for autograd.
- Overlap ``Wt = 1/2 [(N N^T) / |N_i| + ((1-N)(1-N)^T) / |1-N_i|] * N`` (row sums constant).
- ``N'`` the same mask with the ``(k//2)``-th neighbour, ``R = N' * N'^T`` (mutual neighbours),
  ``J = (R Wt) / rowsum(R)`` (this row sum is *not* a constant), ``Jt = (J + J^T) / 2``.
- Contextual term ``L_ctx = 1/B^2 sum_{i != j} [W_ij (1 - Jt_ij)^2 + (1 - W_ij) Jt_ij^2]``.
- Contrastive term ``L_con = sum relu(m+ - S) W / #{>0} + sum relu(S - m-) (1-W) / #{>0}``.
- Regulariser ``L_reg = (mean_ij S_ij - s)^2``.

Every function takes the similarity matrix ``S`` and the same-label mask ``W`` ([B, B] floats),
so the caller decides how ``S`` is made (normalisation, a custom similarity).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

#: Gradient magnitude of the straight-through step (the official code's constant).
DEFAULT_STEP_SLOPE = 10.0


class _StraightThroughStep(torch.autograd.Function):
    """``H(x - t)`` forward; ``dH/dx = slope`` backward, no gradient to ``t`` or ``slope``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, threshold: Tensor, slope: float) -> Tensor:
        ctx.slope = slope
        return (x >= threshold).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        return grad_output * ctx.slope, None, None


def straight_through_step(x: Tensor, threshold: Tensor, slope: float = DEFAULT_STEP_SLOPE) -> Tensor:
    """The hard step ``1[x >= threshold]`` with a straight-through gradient.

    Forward: exactly 0 or 1 (ties count as 1). Backward: the incoming gradient times ``slope``
    flows to ``x`` wherever ``x`` is, as if the step were the line ``slope * x``; ``threshold``
    is detached (a constant: moving it does not change the loss's gradient).
    """
    return _StraightThroughStep.apply(x, threshold.detach(), float(slope))


def squared_distances(similarity: Tensor) -> Tensor:
    """``D = max(2 - 2 S, 0)``: squared Euclidean distances of unit vectors from their dot products."""
    return (2.0 - 2.0 * similarity).clamp(min=0.0)


def neighbour_masks(
    distances: Tensor, k: int, eps: float, slope: float = DEFAULT_STEP_SLOPE
) -> tuple[Tensor, Tensor]:
    """``(N, N')``: the soft-gradient k- and (k//2)-neighbourhood masks of each row of ``D``.

    ``N_ij = H(d_(k)(i) + eps - D_ij)`` with ``d_(k)(i)`` the k-th smallest of row i;
    ``N'`` uses the ``(k//2)``-th smallest. Ties at the k-th distance are all inside.
    """
    size = distances.shape[0]
    if not 2 <= k <= size:
        raise ValueError(f"contextual similarity: k={k} must be between 2 and the batch size {size}")
    nearest = (-distances).topk(k, dim=1).values  # [B, k], -d_(1) >= ... >= -d_(k)
    score = eps - distances  # N = H(score - (-d_(k)))
    mask_k = straight_through_step(score, nearest[:, k - 1 : k], slope)
    mask_half = straight_through_step(score, nearest[:, k // 2 - 1 : k // 2], slope)
    return mask_k, mask_half


def neighbourhood_overlap(mask: Tensor) -> Tensor:
    """``Wt = 1/2 [(N N^T) / |N_i| + ((1-N)(1-N)^T) / |1-N_i|] * N``, row sums as constants.

    A row of ``1 - N`` that is all zero (every sample a neighbour) contributes 0 and no gradient
    (the official code divides 0 by 0 there; it happens only when k + ties cover the whole batch).
    """
    outside = 1.0 - mask
    inside_count = mask.sum(1, keepdim=True).detach()
    outside_count = outside.sum(1, keepdim=True).detach()
    outside_share = torch.where(outside_count > 0, (outside @ outside.T) / outside_count.clamp(min=1.0), 0.0)
    return 0.5 * ((mask @ mask.T) / inside_count + outside_share) * mask


def contextual_similarity(
    similarity: Tensor, k: int = 4, eps: float = 0.05, slope: float = DEFAULT_STEP_SLOPE
) -> Tensor:
    """``Jt``: the symmetric contextual similarity [B, B] of a batch with dot products ``S``.

    ``J = (R Wt) / rowsum(R)`` with ``R = N' * N'^T`` (the mutual (k//2)-neighbours, diagonal
    included) averages each row's overlap over its close mutual neighbours (query expansion);
    ``Jt = (J + J^T) / 2``.
    """
    mask_k, mask_half = neighbour_masks(squared_distances(similarity), k, eps, slope)
    overlap = neighbourhood_overlap(mask_k)
    mutual = mask_half * mask_half.T
    expanded = (mutual @ overlap) / mutual.sum(1, keepdim=True)
    return 0.5 * (expanded + expanded.T)


def off_diagonal(size: int, like: Tensor) -> Tensor:
    """``1 - I`` as a float matrix on ``like``'s device and dtype."""
    return 1.0 - torch.eye(size, device=like.device, dtype=like.dtype)


def contextual_term(
    similarity: Tensor,
    same_label: Tensor,
    k: int = 4,
    eps: float = 0.05,
    slope: float = DEFAULT_STEP_SLOPE,
    pair_mask: Tensor | None = None,
) -> Tensor:
    """``L_ctx = 1/B^2 sum_{i != j} [W (1 - Jt)^2 + (1 - W) Jt^2]``.

    ``pair_mask`` [B, B] (default: all pairs) keeps only some pairs in the sum (e.g. mined
    pairs); the neighbourhoods still use the whole batch and the divisor stays ``B^2``.
    """
    size = similarity.shape[0]
    context = contextual_similarity(similarity, k, eps, slope)
    keep = off_diagonal(size, context) if pair_mask is None else off_diagonal(size, context) * pair_mask
    per_pair = same_label * (1.0 - context).square() + (1.0 - same_label) * context.square()
    return (per_pair * keep).sum() / (size * size)


def _mean_of_active(values: Tensor) -> Tensor:
    """Sum of ``values`` over the number of strictly positive entries (0 when there are none)."""
    active = (values > 0).sum()
    if active == 0:
        return values.sum() * 0.0
    return values.sum() / active


def contrastive_term(
    similarity: Tensor,
    same_label: Tensor,
    pos_margin: float = 0.75,
    neg_margin: float = 0.6,
    positive_mask: Tensor | None = None,
    negative_mask: Tensor | None = None,
) -> Tensor:
    """``L_con = sum relu(m+ - S) W / #{>0} + sum relu(S - m-) (1 - W) / #{>0}``.

    Each half is averaged over its active (non-zero) pairs, and is 0 when none is active. By
    default every pair, the diagonal included, is a candidate; ``positive_mask`` /
    ``negative_mask`` restrict the candidates (e.g. to mined pairs).
    """
    positives = same_label if positive_mask is None else same_label * positive_mask
    negatives = (1.0 - same_label) if negative_mask is None else (1.0 - same_label) * negative_mask
    pull = torch.relu(pos_margin - similarity) * positives
    push = torch.relu(similarity - neg_margin) * negatives
    return _mean_of_active(pull) + _mean_of_active(push)


def similarity_regularizer(similarity: Tensor, target: float = 0.25) -> Tensor:
    """``L_reg = (mean_ij S_ij - target)^2`` over the whole matrix, diagonal included."""
    return (similarity.mean() - target).square()


def hybrid_weights(version: str, lam: float, gamma: float) -> dict[str, float]:
    """Weights of (contextual, contrastive, regularizer) in the two published combinations.

    - ``"256"`` (root ``main.py``): ``lam L_ctx + gamma L_reg + (1 - lam - gamma) L_con``;
    - ``"224"`` (``224x224/train.py``): ``lam L_con + (1 - lam) L_ctx + gamma L_reg``.
    """
    if version == "256":
        return {"contextual": lam, "contrastive": 1.0 - lam - gamma, "regularizer": gamma}
    if version == "224":
        return {"contextual": 1.0 - lam, "contrastive": lam, "regularizer": gamma}
    raise ValueError(f"unknown Hybrid loss version {version!r}; choose '256' or '224'")
