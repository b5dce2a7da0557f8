"""Retrieval metrics of the MLRC protocol, as functions of tensors (no wiring).

For a query of class c, let R be its number of relevant references (compared to self:
|c| - 1, itself excluded; query vs gallery: the gallery items of class c), and rel_i = 1 if
its i-th nearest neighbour has class c. Then, per query:

  - P@1            = rel_1
  - R-Precision    = (1/R) * sum_{i<=R} rel_i
  - MAP@R          = (1/R) * sum_{i<=R} P@i * rel_i,   P@i = (1/i) * sum_{j<=i} rel_j
  - Recall@K       = 1 if rel_i = 1 for some i <= K    (the "R@1/2/4/8" of the papers)

and each metric is the mean over queries with R > 0 (queries without any relevant reference
are left out). The functions below work on one block of queries; ``retrieval_sums`` gives
block sums that add up across blocks.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def relevant_counts(
    query_labels: torch.Tensor, reference_labels: torch.Tensor, exclude_self: bool
) -> torch.Tensor:
    """R per query: references sharing its label, minus one for itself when compared to self."""
    classes, class_sizes = torch.unique(reference_labels, return_counts=True)
    position = torch.searchsorted(classes, query_labels).clamp(max=len(classes) - 1)
    found = classes[position] == query_labels
    counts = torch.where(found, class_sizes[position], torch.zeros_like(class_sizes[position]))
    return counts - 1 if exclude_self else counts


def neighbour_hits(
    neighbour_indices: torch.Tensor, query_labels: torch.Tensor, reference_labels: torch.Tensor
) -> torch.Tensor:
    """rel [q, k]: True where the neighbour has the query's label (index -1 = no neighbour)."""
    labels = reference_labels[neighbour_indices.clamp(min=0)]
    return (labels == query_labels[:, None]) & (neighbour_indices >= 0)


def precision_at_1(hits: torch.Tensor) -> torch.Tensor:
    """Per query: rel_1."""
    return hits[:, 0].double()


def r_precision(hits: torch.Tensor, num_relevant: torch.Tensor) -> torch.Tensor:
    """Per query: hits among the first R neighbours / R (needs k >= R; NaN where R = 0)."""
    within_r = _first_r(hits, num_relevant)
    return (hits & within_r).sum(dim=1).double() / num_relevant.double()


def map_at_r(hits: torch.Tensor, num_relevant: torch.Tensor) -> torch.Tensor:
    """Per query: (1/R) sum_{i<=R} P@i rel_i (needs k >= R; NaN where R = 0)."""
    within_r = _first_r(hits, num_relevant)
    ranks = torch.arange(1, hits.shape[1] + 1, device=hits.device, dtype=torch.float64)
    precision_at_i = hits.cumsum(dim=1).double() / ranks
    return (precision_at_i * (hits & within_r)).sum(dim=1) / num_relevant.double()


def recall_at_k(hits: torch.Tensor, k: int) -> torch.Tensor:
    """Per query: 1 if any of the first k neighbours is relevant (all of them if fewer)."""
    return hits[:, :k].any(dim=1).double()


def _first_r(hits: torch.Tensor, num_relevant: torch.Tensor) -> torch.Tensor:
    positions = torch.arange(hits.shape[1], device=hits.device)
    return positions[None, :] < num_relevant[:, None]


def retrieval_sums(
    hits: torch.Tensor, num_relevant: torch.Tensor, recall_at: Iterable[int] = ()
) -> dict[str, torch.Tensor]:
    """Sums over the queries of this block with R > 0 of each metric, plus their count under
    ``"num_queries"``. Sums of all blocks, divided by the total count, are the metrics."""
    valid = num_relevant > 0
    hits, num_relevant = hits[valid], num_relevant[valid]
    sums = {
        "precision_at_1": precision_at_1(hits).sum(),
        "r_precision": r_precision(hits, num_relevant).sum(),
        "mean_average_precision_at_r": map_at_r(hits, num_relevant).sum(),
    }
    for k in recall_at:
        sums[f"recall_at_{k}"] = recall_at_k(hits, k).sum()
    sums["num_queries"] = valid.sum().double()
    return sums
