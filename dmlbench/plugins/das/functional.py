"""DAS, densely-anchored sampling: the pure functions (docs/methods/das.md has the math and sources).

Notation: a batch of embeddings e_i [N, D] with labels y_i; a frequency matrix F [C, D] (how often
each dimension was among a sample's K largest, per class); per-class banks B_c [S, D] of
same-class embedding differences, filled from slot 0 and then overwritten first-in first-out.

- frequency update:       F[y_i, j] += 1 for every j in topK(e_i)
- same-class differences: {e_a - e_b : y_a = y_b, e_a - e_b != 0}  (never a sample with itself)
- discriminative feature scaling (DFS):  e'_i[j] = s_ij * e_i[j] for j in topK(F[y_i]), s_ij ~ U[l, r)
- memorized transformation shifting (MTS): e'_i += mts_scale * B_{y_i}[floor(u_i * n_{y_i})],
  n_c = number of filled slots of bank c, u_i ~ U[0, 1); nothing is added while B_{y_i} is empty
- the produced anchor is L2-normalised (when ``normalize``).

"Top K" is the K largest values; between equal values the lower dimension index wins (a fixed
rule; ``torch.topk`` leaves the choice among ties unspecified). No function here draws random numbers:
the draws ``scale`` and ``entry_draw`` are arguments.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def top_k_dimensions(values: Tensor, k: int) -> Tensor:
    """Indices [N, k] of the k largest entries of each row of ``values`` [N, D], largest first;
    ties go to the lower dimension index."""
    if not 1 <= k <= values.shape[-1]:
        raise ValueError(
            f"top_k_dimensions: k must be between 1 and the dimension {values.shape[-1]}, got {k}"
        )
    return torch.sort(values, dim=-1, descending=True, stable=True).indices[..., :k]


def update_frequency(frequency: Tensor, embeddings: Tensor, labels: Tensor, k: int) -> Tensor:
    """F + counts: ``F[y_i, j] += 1`` for every j among the k largest dimensions of ``e_i``.

    ``frequency`` [C, D] (any numeric dtype), ``embeddings`` [N, D], ``labels`` [N] in [0, C).
    Returns a new tensor; ``frequency`` is not modified.
    """
    top = top_k_dimensions(embeddings.detach(), k)  # [N, k]
    rows = labels.to(frequency.device).long().unsqueeze(1).expand_as(top)
    ones = torch.ones(top.shape, dtype=frequency.dtype, device=frequency.device)
    return frequency.index_put((rows, top.to(frequency.device)), ones, accumulate=True)


def same_class_differences(embeddings: Tensor, labels: Tensor, label: int) -> Tensor:
    """The differences e_a - e_b [M, D] of the samples of class ``label``, ordered by (a, b) in
    batch order, without the zero differences (a sample with itself, or two equal embeddings).
    Computed on detached embeddings: the banks hold constants."""
    members = embeddings.detach()[labels == label]  # [m, D]
    differences = (members.unsqueeze(1) - members.unsqueeze(0)).reshape(-1, embeddings.shape[1])
    return differences[differences.abs().sum(dim=1) > 0]


def push_fifo(bank: Tensor, pointer: int, filled: int, entries: Tensor) -> tuple[Tensor, int, int]:
    """Push ``entries`` [M, D] into the circular bank [S, D]: the oldest slots are overwritten.

    ``pointer`` is the next slot to write, ``filled`` how many slots hold an entry (<= S); entry m
    goes to slot (pointer + m) mod S. With M > S only the last S entries are kept: the bank becomes
    them (slot 0 the oldest) and the pointer 0, so the next push overwrites the oldest first.
    Returns (new bank, new pointer, new filled); ``bank`` is not modified.
    """
    size = bank.shape[0]
    count = entries.shape[0]
    bank = bank.clone()
    if count == 0:
        return bank, pointer, filled
    if count > size:
        bank[:] = entries[-size:]
        return bank, 0, size
    slots = (pointer + torch.arange(count)) % size
    bank[slots.to(bank.device)] = entries.to(bank.dtype)
    return bank, int((pointer + count) % size), min(size, filled + count)


def scale_dimensions(embeddings: Tensor, dimensions: Tensor, scale: Tensor) -> Tensor:
    """DFS: ``e'[i, dimensions[i, k]] = scale[i, k] * e[i, dimensions[i, k]]``, other entries kept.

    ``embeddings`` [N, D], ``dimensions`` [N, K] (distinct per row), ``scale`` [N, K].
    Differentiable with respect to ``embeddings``."""
    picked = embeddings.gather(1, dimensions) * scale.to(embeddings.dtype)
    return embeddings.scatter(1, dimensions, picked)


def bank_entries(banks: Tensor, filled: Tensor, labels: Tensor, entry_draw: Tensor) -> Tensor:
    """MTS shifts [N, D]: for sample i of class c = y_i the bank entry in slot
    ``floor(entry_draw[i] * filled[c])`` of ``banks[c]``; zeros where ``filled[c] == 0``.

    ``banks`` [C, S, D], ``filled`` [C], ``labels`` [N], ``entry_draw`` [N] in [0, 1)."""
    labels = labels.to(banks.device).long()
    count = filled.to(banks.device)[labels]  # [N]
    slot = torch.floor(entry_draw.to(banks.device, torch.float64) * count).long()
    slot = torch.minimum(slot, (count - 1).clamp(min=0))
    shift = banks[labels, slot]  # [N, D]
    return torch.where((count > 0).unsqueeze(1), shift, torch.zeros_like(shift))


def produce_anchors(
    embeddings: Tensor,
    dimensions: Tensor,
    scale: Tensor,
    shift: Tensor,
    mts_scale: float,
    normalize: bool = True,
    detach: bool = True,
) -> Tensor:
    """One set of produced anchors [N, D]: ``normalize(scale_dimensions(e) + mts_scale * shift)``.

    ``dimensions`` [N, K] are the class's most frequent dimensions, ``scale`` [N, K] the DFS factors,
    ``shift`` [N, D] the picked bank entries (a constant). ``detach``: no gradient flows from the
    produced anchors into ``embeddings`` (they stay constants the loss compares against).
    """
    base = embeddings.detach() if detach else embeddings
    produced = scale_dimensions(base, dimensions.to(base.device), scale.to(base.device))
    produced = produced + mts_scale * shift.detach().to(base.device, base.dtype)
    return F.normalize(produced, dim=1) if normalize else produced
