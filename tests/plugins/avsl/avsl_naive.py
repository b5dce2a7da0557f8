"""Deliberately naive float64 re-computations of AVSL's pieces from the paper's definitions
(docs/methods/avsl.md): plain Python loops over samples, channels and positions, no shared code
with plugins/avsl."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def naive_certainty(maps: Tensor) -> Tensor:
    """c[b, k] = unbiased std over positions of (M - min over width) / its L1 norm."""
    batch, channels, height, width = maps.shape
    out = torch.zeros(batch, channels, dtype=torch.float64)
    for i in range(batch):
        for k in range(channels):
            values = []
            for h in range(height):
                row_min = min(float(maps[i, k, h, w]) for w in range(width))
                values.extend(float(maps[i, k, h, w]) - row_min for w in range(width))
            total = sum(abs(v) for v in values)
            values = [v / max(total, 1e-12) for v in values]
            mean = sum(values) / len(values)
            out[i, k] = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return out


def naive_link(low: Tensor, high: Tensor) -> Tensor:
    """A[m, n] = mean over the batch of <low_m, high_n>, both flattened, L2-normalised, the lower
    map average-pooled (by an integer factor here) to the upper map's size."""
    batch, low_channels, low_h, low_w = low.shape
    _, high_channels, high_h, high_w = high.shape
    fh, fw = low_h // high_h, low_w // high_w
    out = torch.zeros(low_channels, high_channels, dtype=torch.float64)
    for i in range(batch):
        lows = []
        for m in range(low_channels):
            pooled = [
                sum(float(low[i, m, y * fh + dy, x * fw + dx]) for dy in range(fh) for dx in range(fw))
                / (fh * fw)
                for y in range(high_h)
                for x in range(high_w)
            ]
            norm = math.sqrt(sum(v * v for v in pooled))
            lows.append([v / norm for v in pooled])
        for n in range(high_channels):
            flat = [float(high[i, n, y, x]) for y in range(high_h) for x in range(high_w)]
            norm = math.sqrt(sum(v * v for v in flat))
            flat = [v / norm for v in flat]
            for m in range(low_channels):
                out[m, n] += sum(a * b for a, b in zip(lows[m], flat)) / batch
    return out


def naive_topk_normalized(link: Tensor, k: int) -> Tensor:
    """Per column: keep the k largest of ReLU(A) (values sorted by hand), divide by their sum."""
    rows, cols = link.shape
    out = torch.zeros(rows, cols, dtype=torch.float64)
    for n in range(cols):
        column = [max(float(link[m, n]), 0.0) for m in range(rows)]
        keep = sorted(range(rows), key=lambda m: -column[m])[:k]
        total = sum(column[m] for m in keep) + 1e-8
        for m in keep:
            out[m, n] = column[m] / total
    return out


def _unit(vector: Tensor) -> list[float]:
    norm = math.sqrt(sum(float(v) ** 2 for v in vector))
    return [float(v) / norm for v in vector]


def naive_pair_distance(x_emb, y_emb, x_cert, y_cert, links, a, b, gamma) -> tuple[float, list[float]]:
    """(D, [d^l]) of one pair x, y by the recursion, dimension by dimension."""
    dims = len(x_emb[0])
    propagated: list[float] = []
    level_distances = []
    for level in range(len(x_emb)):
        ex, ey = _unit(x_emb[level]), _unit(y_emb[level])
        delta = [(ex[k] - ey[k]) ** 2 for k in range(dims)]
        level_distances.append(sum(delta))
        if level == 0:
            propagated = delta
            continue
        new = []
        for n in range(dims):
            gate_in = gamma * (
                float(x_cert[level][n]) * float(y_cert[level][n]) * float(a[level - 1][n])
                + float(b[level - 1][n])
            )
            gate = 1.0 / (1.0 + math.exp(-gate_in))
            transferred = sum(propagated[m] * float(links[level - 1][m, n]) for m in range(dims))
            new.append(gate * delta[n] + (1.0 - gate) * transferred)
        propagated = new
    return sum(propagated), level_distances


def naive_pa_loss(
    distances: list[list[float]],
    row_labels: list[int],
    col_labels: list[int],
    alpha: float,
    pos_margin: float,
    neg_margin: float,
) -> float:
    """Proxy-Anchor on distances, proxies = columns, written as sums over proxies."""
    pos_terms, neg_terms = [], []
    for j, proxy_label in enumerate(col_labels):
        positives = [distances[i][j] for i in range(len(row_labels)) if row_labels[i] == proxy_label]
        negatives = [distances[i][j] for i in range(len(row_labels)) if row_labels[i] != proxy_label]
        if positives:
            pos_terms.append(math.log(1 + sum(math.exp(alpha * (d - pos_margin)) for d in positives)))
        neg_terms.append(math.log(1 + sum(math.exp(-alpha * (d - neg_margin)) for d in negatives)))
    return (sum(pos_terms) / len(pos_terms) if pos_terms else 0.0) + sum(neg_terms) / len(neg_terms)
