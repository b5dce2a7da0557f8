"""Clustering quality: k-means with as many clusters as classes, scored by NMI / AMI.

k-means is Lloyd's algorithm in torch (on the embeddings' device), seeded, started from
distinct random samples, assignments computed in memory-bounded blocks; an empty cluster keeps
its previous centre. NMI and AMI come from scikit-learn.
"""

from __future__ import annotations

import torch

from dmlbench.errors import ConfigError


def kmeans(
    embeddings: torch.Tensor,
    num_clusters: int,
    *,
    iterations: int = 20,
    seed: int = 0,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Cluster index per row of ``embeddings`` [N, D] (int64 [N]), minimising squared L2."""
    num_samples = len(embeddings)
    if not 1 <= num_clusters <= num_samples:
        raise ConfigError(f"k-means needs 1 <= clusters ({num_clusters}) <= samples ({num_samples})")
    generator = torch.Generator().manual_seed(seed)
    start_rows = torch.randperm(num_samples, generator=generator)[:num_clusters].to(embeddings.device)
    centres = embeddings[start_rows].clone()
    chunk = chunk_size or max(1, (128 * 2**20) // (4 * num_clusters))
    assignment = nearest_centre(embeddings, centres, chunk)
    for _ in range(iterations):
        sums = torch.zeros_like(centres).index_add_(0, assignment, embeddings)
        sizes = torch.bincount(assignment, minlength=num_clusters)
        filled = sizes > 0
        centres[filled] = sums[filled] / sizes[filled, None].to(sums.dtype)
        updated = nearest_centre(embeddings, centres, chunk)
        if torch.equal(updated, assignment):
            break
        assignment = updated
    return assignment


def nearest_centre(embeddings: torch.Tensor, centres: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """argmin_c ||x - c||^2 = argmax_c (2 <x, c> - ||c||^2), block by block (lowest c on ties)."""
    squared_norms = (centres * centres).sum(dim=1)
    parts = []
    for start in range(0, len(embeddings), chunk_size):
        scores = 2 * embeddings[start : start + chunk_size] @ centres.T - squared_norms
        parts.append(scores.argmax(dim=1))
    return torch.cat(parts)


def clustering_scores(
    labels: torch.Tensor, assignment: torch.Tensor, *, nmi: bool, ami: bool
) -> dict[str, float]:
    """NMI and/or AMI (scikit-learn's definitions) between classes and clusters."""
    try:
        from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score
    except ImportError as error:
        raise ConfigError("NMI/AMI need scikit-learn: pip install scikit-learn") from error
    truth, found = labels.cpu().numpy(), assignment.cpu().numpy()
    scores: dict[str, float] = {}
    if nmi:
        scores["nmi"] = float(normalized_mutual_info_score(truth, found))
    if ami:
        scores["ami"] = float(adjusted_mutual_info_score(truth, found))
    return scores
