"""AVSL, attributable visual similarity learning (Zhang et al., CVPR 2022): the pure functions.

Notation (docs/methods/avsl.md has the derivation and sources). Levels l = 1..L (e.g. ResNet50
layer2/3/4); per level an embedding e^l [B, E] and a certainty c^l [B, E]; between consecutive
levels a link matrix A^{l-1 -> l} [E, E] (an EMA over training batches).

- certainty: ``c_k = std_{h,w}( L1-normalise( M_k - min_w M_k ) )`` of each activation map M_k;
- link: ``A[m, n] = mean_b < m^low_{b,m}, m^high_{b,n} >`` over L2-normalised flattened maps
  (the lower map average-pooled to the upper map's size);
- propagation: ``delta^l = |ê_x - ê_y|^p`` per dimension (ê = e / ||e||_2), ``d^l = sum delta^l``;
  ``dh^1 = sg(delta^1)``; ``dh^l = P^l * sg(delta^l) + (1 - P^l) * (dh^{l-1} W^l)`` with
  ``P^l = sigmoid(gamma (c_x c_y a^l + b^l))`` and ``W^l`` = column-normalised top-k of ReLU(A);
  the final distance ``D = sum dh^L`` (sg = stop-gradient);
- loss: Proxy-Anchor in distance form (see :func:`proxy_anchor_distance_loss`).

Everything here is a function of its arguments (no module state), float32 or float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gap_plus_gmp(feature_map: Tensor) -> Tensor:
    """``GAP(F) + GMP(F)``: [B, C, H, W] -> [B, C, 1, 1]."""
    return feature_map.mean(dim=(2, 3), keepdim=True) + feature_map.amax(dim=(2, 3), keepdim=True)


def spread_max(feature_map: Tensor) -> Tensor:
    """U(F): zero everywhere except ``H * W * max_{h,w} F_c`` at each channel's (first) argmax."""
    batch, channels, height, width = feature_map.shape
    flat = feature_map.flatten(2)
    values, where = flat.max(dim=2, keepdim=True)
    out = torch.zeros_like(flat).scatter_(2, where, values * (height * width))
    return out.view(batch, channels, height, width)


def certainty(activation_map: Tensor) -> Tensor:
    """Certainty of each channel of an activation map [B, E, H, W] -> [B, E].

    ``c = std( L1-normalise( M - min over the width axis ) )`` over the H*W positions (the
    unbiased std, torch's default); the min is taken along the last (width) axis, as the
    official code does.
    """
    shifted = activation_map - activation_map.amin(dim=-1, keepdim=True)
    flat = F.normalize(shifted.flatten(2), p=1, dim=-1)
    return flat.std(dim=-1)


def link_matrix(low_map: Tensor, high_map: Tensor) -> Tensor:
    """The batch's link matrix between two levels' activation maps: [E_low, E_high].

    The lower map [B, E_low, H, W] is average-pooled to the upper map's size [h, w] when they
    differ; both are flattened over positions and L2-normalised per channel;
    ``A[m, n] = (1/B) sum_b <low[b, m], high[b, n]>``.
    """
    if low_map.shape[2:] != high_map.shape[2:]:
        low_map = F.adaptive_avg_pool2d(low_map, (high_map.shape[2], high_map.shape[3]))
    low = F.normalize(low_map.flatten(2), p=2, dim=-1)
    high = F.normalize(high_map.flatten(2), p=2, dim=-1)
    return torch.einsum("bmj,bnj->mn", low, high) / low.shape[0]


def ema_update(old: Tensor, new: Tensor, momentum: float, initialized: bool) -> Tensor:
    """``new`` on the first batch, then ``momentum * old + (1 - momentum) * new``."""
    return new.clone() if not initialized else momentum * old + (1.0 - momentum) * new


def topk_column_normalized(link: Tensor, k: int) -> Tensor:
    """W = ReLU(A) restricted to each column's k largest entries, columns summing to 1.

    Entries tied with the k-th largest (within 1e-8) are kept too; a column's sum gets 1e-8
    added before dividing (an all-zero column stays zero).
    """
    positive = torch.relu(link)
    kth = torch.topk(positive, k=k, dim=0).values.amin(dim=0, keepdim=True)
    kept = positive * (positive >= kth - 1e-8)
    return kept / (kept.sum(dim=0, keepdim=True) + 1e-8)


def pair_deltas(first: Tensor, second: Tensor, p: float = 2.0) -> Tensor:
    """Per-dimension differences of every pair: [q, E] x [r, E] -> [q, r, E],
    ``|ê_i - ê_j|^p`` with ``ê = e / ||e||_p`` (p = 2: squared differences of unit vectors)."""
    first = F.normalize(first, p=p, dim=-1)
    second = F.normalize(second, p=p, dim=-1)
    return (first.unsqueeze(1) - second.unsqueeze(0)).abs().pow(p)


def certainty_gate(cert_first: Tensor, cert_second: Tensor, a: Tensor, b: Tensor, gamma: float) -> Tensor:
    """``P = sigmoid(gamma * (c_i * c_j * a + b))`` per pair and dimension: [q, r, E]."""
    return torch.sigmoid(gamma * (cert_first.unsqueeze(1) * cert_second.unsqueeze(0) * a + b))


def avsl_distances(
    embeddings_first: list[Tensor],
    embeddings_second: list[Tensor],
    certainties_first: list[Tensor],
    certainties_second: list[Tensor],
    links: list[Tensor],
    a: list[Tensor],
    b: list[Tensor],
    gamma: float = 10.0,
    p: float = 2.0,
) -> tuple[Tensor, list[Tensor]]:
    """The final distance D [q, r] and the per-level distances d^l [q, r] of every pair.

    ``links[l - 1]``, ``a[l - 1]`` and ``b[l - 1]`` belong to level l >= 2 (0-based index l); ``links``
    are the normalised W (:func:`topk_column_normalized`). Gradients: d^l reaches the embeddings;
    D reaches only a and b (the deltas are stop-gradient, W and the certainties carry none).
    """
    propagated: Tensor | None = None
    level_distances = []
    for level, (first, second) in enumerate(zip(embeddings_first, embeddings_second)):
        delta = pair_deltas(first, second, p)
        level_distances.append(delta.sum(dim=-1))
        if propagated is None:
            propagated = delta.detach()
            continue
        gate = certainty_gate(
            certainties_first[level], certainties_second[level], a[level - 1], b[level - 1], gamma
        )
        propagated = gate * delta.detach() + (1.0 - gate) * (propagated @ links[level - 1])
    assert propagated is not None, "no embedding levels"
    return propagated.sum(dim=-1), level_distances


def _final_distance_no_grad(
    embeddings_first, embeddings_second, certainties_first, certainties_second, links, a, b, gamma, p
) -> Tensor:
    """D of :func:`avsl_distances` without autograd, with in-place updates (4 [q, r, E] temporaries)."""
    propagated: Tensor | None = None
    for level, (first, second) in enumerate(zip(embeddings_first, embeddings_second)):
        delta = F.normalize(first, p=p, dim=-1).unsqueeze(1) - F.normalize(second, p=p, dim=-1).unsqueeze(0)
        delta.abs_().pow_(p)
        if propagated is None:
            propagated = delta
            continue
        gate = certainties_first[level].unsqueeze(1) * certainties_second[level].unsqueeze(0)
        gate.mul_(a[level - 1]).add_(b[level - 1]).mul_(gamma).sigmoid_()
        transferred = propagated @ links[level - 1]
        propagated = delta.sub_(transferred).mul_(gate).add_(transferred)  # P delta + (1 - P) transferred
    assert propagated is not None, "no embedding levels"
    return propagated.sum(dim=-1)


def avsl_final_distance_chunked(
    embeddings_first: list[Tensor],
    embeddings_second: list[Tensor],
    certainties_first: list[Tensor],
    certainties_second: list[Tensor],
    links: list[Tensor],
    a: list[Tensor],
    b: list[Tensor],
    gamma: float = 10.0,
    p: float = 2.0,
    max_elements: int = 2**24,
) -> Tensor:
    """D [q, r] computed ``rows`` queries at a time so that one [rows, r, E] temporary holds at
    most ``max_elements`` numbers (4 such temporaries are alive at once). No gradient."""
    num_queries = embeddings_first[0].shape[0]
    num_refs, dim = embeddings_second[0].shape
    rows = max(1, int(max_elements) // max(1, num_refs * dim))
    out = embeddings_first[0].new_empty(num_queries, num_refs)
    with torch.no_grad():
        for start in range(0, num_queries, rows):
            part = slice(start, min(start + rows, num_queries))
            out[part] = _final_distance_no_grad(
                [e[part] for e in embeddings_first],
                embeddings_second,
                [c[part] for c in certainties_first],
                certainties_second,
                links,
                a,
                b,
                gamma,
                p,
            )
    return out


def proxy_anchor_distance_loss(
    distances: Tensor,
    row_labels: Tensor,
    col_labels: Tensor,
    alpha: float = 16.0,
    pos_margin: float = 1.8,
    neg_margin: float = 2.2,
) -> Tensor:
    """Proxy-Anchor on distances: samples are rows, proxies columns of ``distances`` [N, C].

    ``loss = mean_{c in P+} log(1 + sum_{i: y_i = c} exp(alpha (D_ic - pos_margin)))
           + mean_{c}      log(1 + sum_{i: y_i != c} exp(-alpha (D_ic - neg_margin)))``
    where P+ are the proxies with a positive in the batch (no such proxy: the positive part is 0)
    and the second mean is over all columns. With squared distances of unit vectors
    (D = 2 - 2 cos) and margins 1.8 / 2.2 this is Kim et al.'s Proxy-Anchor with alpha' = 2 alpha
    and margin 0.1 on cosine similarity.
    """
    positive = row_labels.unsqueeze(1) == col_labels.unsqueeze(0)
    pos_exp = torch.where(positive, torch.exp(alpha * (distances - pos_margin)), torch.zeros_like(distances))
    neg_exp = torch.where(
        ~positive, torch.exp(-alpha * (distances - neg_margin)), torch.zeros_like(distances)
    )
    pos_term = torch.log1p(pos_exp.sum(dim=0))
    neg_term = torch.log1p(neg_exp.sum(dim=0))
    with_positives = positive.any(dim=0)
    pos_loss = pos_term[with_positives].mean() if bool(with_positives.any()) else distances.sum() * 0
    return pos_loss + neg_term.mean()


def pair_attribution(
    embeddings_first: list[Tensor],
    embeddings_second: list[Tensor],
    certainties_first: list[Tensor],
    certainties_second: list[Tensor],
    links: list[Tensor],
    a: list[Tensor],
    b: list[Tensor],
    gamma: float = 10.0,
    p: float = 2.0,
) -> Tensor:
    """Contributions of each level and dimension to D for paired rows: [m, L, E], summing to D.

    D is linear in the deltas once the gates P and the links W are fixed, so unrolling the
    recursion from the top gives ``D = sum_l sum_k v^l_k P^l_k delta^l_k`` with ``v^L = 1``,
    ``v^{l-1} = W^l ((1 - P^l) * v^l)`` and ``P^1 = 1``: entry [i, l, k] is
    ``v^l_k P^l_k delta^l_k`` of pair (first[i], second[i]).
    """
    deltas = [
        (F.normalize(x, p=p, dim=-1) - F.normalize(y, p=p, dim=-1)).abs().pow(p)
        for x, y in zip(embeddings_first, embeddings_second)
    ]
    gates = [torch.ones_like(deltas[0])] + [
        torch.sigmoid(gamma * (certainties_first[l] * certainties_second[l] * a[l - 1] + b[l - 1]))
        for l in range(1, len(deltas))
    ]
    weight = torch.ones_like(deltas[-1])
    contributions: list[Tensor] = []  # from the last level down
    for level in range(len(deltas) - 1, -1, -1):
        contributions.append(weight * gates[level] * deltas[level])
        if level > 0:
            weight = ((1.0 - gates[level]) * weight) @ links[level - 1].T
    return torch.stack(contributions[::-1], dim=1)
