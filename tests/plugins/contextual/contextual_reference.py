"""Independent float64 computations of the Hybrid loss, written from the paper's definitions
(Liao et al., ICML 2023, section 3), to test dmlbench.plugins.contextual against.

Two forms:
- :func:`loop_contextual_similarity`: plain Python loops over sets (no tensors, no autograd),
  for values;
- :func:`dense_hybrid`: dense float64 tensors, with the straight-through step written as
  ``hard + slope * (x - x.detach())`` (value = the hard step, derivative = slope), so autograd
  gives the straight-through gradients without the project's autograd.Function.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def loop_contextual_similarity(sim: list[list[float]], k: int, eps: float) -> list[list[float]]:
    """Jt from a similarity matrix given as nested lists, by counting set members."""
    size = len(sim)
    dist = [[max(2.0 - 2.0 * sim[i][j], 0.0) for j in range(size)] for i in range(size)]

    def neighbours(i: int, rank: int) -> set[int]:
        kth = sorted(dist[i])[rank - 1]
        return {j for j in range(size) if dist[i][j] <= kth + eps}

    near = [neighbours(i, k) for i in range(size)]
    half = [neighbours(i, k // 2) for i in range(size)]
    everyone = set(range(size))
    overlap = [[0.0] * size for _ in range(size)]
    for i in range(size):
        far_i = everyone - near[i]
        for j in near[i]:
            inside = len(near[i] & near[j]) / len(near[i])
            outside = len(far_i & (everyone - near[j])) / len(far_i) if far_i else 0.0
            overlap[i][j] = 0.5 * (inside + outside)
    expanded = [[0.0] * size for _ in range(size)]
    for i in range(size):
        mutual = [m for m in half[i] if i in half[m]]
        for j in range(size):
            expanded[i][j] = sum(overlap[m][j] for m in mutual) / len(mutual)
    return [[0.5 * (expanded[i][j] + expanded[j][i]) for j in range(size)] for i in range(size)]


def loop_contrastive(
    sim: list[list[float]], labels: list[int], pos_margin: float, neg_margin: float
) -> float:
    pulls = [
        pos_margin - sim[i][j]
        for i in range(len(sim))
        for j in range(len(sim))
        if labels[i] == labels[j] and pos_margin - sim[i][j] > 0
    ]
    pushes = [
        sim[i][j] - neg_margin
        for i in range(len(sim))
        for j in range(len(sim))
        if labels[i] != labels[j] and sim[i][j] - neg_margin > 0
    ]
    return (sum(pulls) / len(pulls) if pulls else 0.0) + (sum(pushes) / len(pushes) if pushes else 0.0)


def loop_contextual_term(context: list[list[float]], labels: list[int]) -> float:
    size = len(context)
    total = 0.0
    for i in range(size):
        for j in range(size):
            if i != j:
                total += (1.0 - context[i][j]) ** 2 if labels[i] == labels[j] else context[i][j] ** 2
    return total / size**2


def _step(x: Tensor, threshold: Tensor, slope: float) -> Tensor:
    hard = (x >= threshold).to(x.dtype)
    return hard.detach() + slope * (x - x.detach())


def dense_hybrid(
    embeddings: Tensor,
    labels: Tensor,
    weights: dict[str, float],
    k: int = 4,
    eps: float = 0.05,
    reg_sim: float = 0.25,
    pos_margin: float = 0.75,
    neg_margin: float = 0.6,
    slope: float = 10.0,
) -> Tensor:
    """The weighted Hybrid loss in float64, from the definitions."""
    x = embeddings.double()
    unit = x / x.norm(dim=1, keepdim=True)
    sim = unit @ unit.T
    size = len(labels)
    same = (labels[:, None] == labels[None, :]).double()
    dist = torch.clamp(2.0 - 2.0 * sim, min=0.0)
    ordered = torch.sort(dist.detach(), dim=1).values
    near = _step(-dist + eps, -ordered[:, k - 1 : k], slope)
    half = _step(-dist + eps, -ordered[:, k // 2 - 1 : k // 2], slope)
    size_in = near.sum(1).detach()
    size_out = (1 - near).sum(1).detach()
    both_in = torch.einsum("il,jl->ij", near, near)
    both_out = torch.einsum("il,jl->ij", 1 - near, 1 - near)
    outside_share = torch.where(size_out[:, None] > 0, both_out / size_out[:, None].clamp(min=1e-300), 0.0)
    overlap = 0.5 * (both_in / size_in[:, None] + outside_share) * near  # empty outside: 0, not 0/0
    mutual = half * half.T
    expanded = torch.einsum("im,mj->ij", mutual, overlap) / mutual.sum(1)[:, None]
    context = 0.5 * (expanded + expanded.T)
    off = 1.0 - torch.eye(size, dtype=torch.float64)
    l_ctx = ((same * (1 - context) ** 2 + (1 - same) * context**2) * off).sum() / size**2
    pull = torch.relu(pos_margin - sim) * same
    push = torch.relu(sim - neg_margin) * (1 - same)
    n_pull, n_push = int((pull > 0).sum()), int((push > 0).sum())
    l_con = (pull.sum() / n_pull if n_pull else 0.0) + (push.sum() / n_push if n_push else 0.0)
    l_reg = (sim.sum() / size**2 - reg_sim) ** 2
    return (
        weights.get("contextual", 0.0) * l_ctx
        + weights.get("contrastive", 0.0) * l_con
        + weights.get("regularizer", 0.0) * l_reg
    )


def batch(size: int, classes: int, dim: int, seed: int, kind: str) -> tuple[Tensor, Tensor]:
    """Seeded float64 embeddings: ``random``, ``clustered`` (class means + noise) or ``ties``
    (repeated rows: several samples at distance 0) or ``kth_tie`` (row 0's 4th and 5th nearest
    samples at exactly the same distance)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(math.ceil(size / classes))[:size]
    labels = labels[torch.randperm(size, generator=generator)]
    x = torch.randn(size, dim, generator=generator, dtype=torch.float64)
    if kind == "clustered":
        x = 0.3 * x + torch.randn(classes, dim, generator=generator, dtype=torch.float64)[labels]
    elif kind == "ties":
        x[1] = x[0]
        x[2] = x[0]
        x[3] = x[0]
        x[5] = x[4]
        x[7] = -x[6]
    elif kind == "kth_tie":  # row 0: distances 0, a, a, b, b -> the 4th and 5th nearest tie exactly
        x[:5] = 0.0
        for row, angle in enumerate((0.0, 0.3, -0.3, 0.6, -0.6)):
            x[row, 0], x[row, 1] = math.cos(angle), math.sin(angle)
    return x, labels
