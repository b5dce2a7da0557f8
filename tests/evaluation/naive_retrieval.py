"""Independent, deliberately naive reference implementations for the evaluation tests.

One query at a time, plain Python/numpy, float64, neighbours ordered by sorting on the key
(-score, reference index): the published definitions (docs/protocol.md) written out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def dot_score(query: np.ndarray, reference: np.ndarray) -> float:
    return float(np.dot(query.astype(np.float64), reference.astype(np.float64)))


def negative_squared_distance(query: np.ndarray, reference: np.ndarray) -> float:
    difference = query.astype(np.float64) - reference.astype(np.float64)
    return -float(np.dot(difference, difference))


def negative_hamming(query: np.ndarray, reference: np.ndarray) -> float:
    """Minus the number of differing bits of the codes 1[x > 0]."""
    return -float(np.sum((query > 0) != (reference > 0)))


def l2_normalised(embeddings: np.ndarray) -> np.ndarray:
    embeddings = embeddings.astype(np.float64)
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def neighbour_order(query_index: int, queries, references, score: Callable, exclude_self: bool) -> list[int]:
    """Reference indices sorted by (score descending, index ascending), self left out."""
    candidates = [j for j in range(len(references)) if not (exclude_self and j == query_index)]
    scores = {j: score(queries[query_index], references[j]) for j in candidates}
    return sorted(candidates, key=lambda j: (-scores[j], j))


def naive_metrics(
    queries,
    query_labels: Sequence,
    references,
    reference_labels: Sequence,
    *,
    exclude_self: bool,
    score: Callable = dot_score,
    recall_at: Sequence[int] = (),
    orders: list[list[int]] | None = None,
) -> dict[str, float]:
    """P@1, R-Precision, MAP@R and Recall@K averaged over queries with R > 0.

    ``orders`` (optional) gives each query's neighbour list directly; it may be shorter than the
    reference set (a re-ranked candidate list): R still counts every relevant reference."""
    per_query: dict[str, list[float]] = {
        "precision_at_1": [],
        "r_precision": [],
        "mean_average_precision_at_r": [],
    }
    for k in recall_at:
        per_query[f"recall_at_{k}"] = []
    for i in range(len(query_labels)):
        order = (
            orders[i] if orders is not None else neighbour_order(i, queries, references, score, exclude_self)
        )
        relevant = [1 if reference_labels[j] == query_labels[i] else 0 for j in order]
        r = sum(
            1
            for j in range(len(reference_labels))
            if reference_labels[j] == query_labels[i] and not (exclude_self and j == i)
        )
        if r == 0:
            continue
        per_query["precision_at_1"].append(relevant[0])
        per_query["r_precision"].append(sum(relevant[:r]) / r)
        average_precision = 0.0
        for position in range(r):
            if relevant[position]:
                average_precision += sum(relevant[: position + 1]) / (position + 1)
        per_query["mean_average_precision_at_r"].append(average_precision / r)
        for k in recall_at:
            per_query[f"recall_at_{k}"].append(1.0 if any(relevant[:k]) else 0.0)
    return {name: float(np.mean(values)) for name, values in per_query.items()}
