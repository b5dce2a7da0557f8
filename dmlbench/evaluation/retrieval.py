"""``retrieval_metrics``: the MLRC metrics (and Recall@K, NMI, AMI) of a set of embeddings.

Two modes:
  - compared to self (no query set): every sample is a query against all the others;
  - query vs gallery (``query_embeddings`` given, In-Shop): queries search the gallery; a
    query's relevant items are the gallery items of its class; nothing is excluded.

k (neighbours per query) defaults to what MAP@R needs: the largest R over the queries (compared
to self: largest class size - 1; query vs gallery: the largest gallery class among the queries'
classes), or the largest Recall@K if that is larger, capped at the number of references. A k
smaller than that is refused with a :class:`ConfigError` rather than silently truncating
R-Precision and MAP@R.

Ties: neighbours with exactly equal scores are ordered by reference index, lowest first, on
every backend (see topk.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dmlbench.errors import ConfigError, DatasetError
from dmlbench.evaluation.clustering import clustering_scores, kmeans
from dmlbench.evaluation.inputs import (
    as_float_matrix,
    as_label_vectors,
    choose_device,
    row_count,
    select_rows,
    to_device,
)
from dmlbench.evaluation.knn import (
    builtin_score,
    checked_similarity,
    default_chunk_size,
    knn_blocks,
    rerank,
    symmetric_knn_blocks,
)
from dmlbench.evaluation.metrics import neighbour_hits, relevant_counts, retrieval_sums
from dmlbench.evaluation.retrieval_settings import RetrievalSettings

#: Block side of the symmetric (compared-to-self, CPU) path, and the most memory its running
#: top-k of unfinished blocks may take before the plain row blocks are used instead.
DEFAULT_SYMMETRIC_BLOCK = 2048
SYMMETRIC_RUNNING_BYTES = 512 * 2**20
#: Above this k, top-k selection on narrow blocks costs more than the halved products save.
SYMMETRIC_MAX_K = 32

#: Default (queries, references) per block when a custom similarity scores all pairs: it may
#: build [q, r, ...] intermediates, so both sides of a block stay small.
DEFAULT_SIMILARITY_BLOCK = (256, 1024)


def retrieval_metrics(
    embeddings: Any,
    labels: Any,
    settings: RetrievalSettings | None = None,
    *,
    query_embeddings: Any = None,
    query_labels: Any = None,
    similarity_inputs: Any = None,
    query_similarity_inputs: Any = None,
) -> dict[str, float]:
    """Mean P@1, R-Precision, MAP@R (keys ``precision_at_1``, ``r_precision``,
    ``mean_average_precision_at_r``), ``recall_at_{K}`` for K in ``settings.recall_at``, and
    ``nmi`` / ``ami`` if asked; all in [0, 1].

    Args:
        embeddings, labels: the reference set [N, D] and its labels [N] (torch or numpy; labels
            may be any comparable values). With a custom similarity scoring all pairs,
            ``embeddings`` may be any per-sample inputs (see ``knn.Similarity``).
        settings: how to rank and what to score (:class:`RetrievalSettings`; default: MLRC's).
        query_embeddings, query_labels: a separate query set (query vs gallery mode).
        similarity_inputs, query_similarity_inputs: per-sample inputs given to
            ``settings.similarity`` (default: the embeddings as passed, not normalised).
    """
    settings = RetrievalSettings() if settings is None else settings
    settings.check()
    if (query_embeddings is None) != (query_labels is None):
        raise ConfigError("give query_embeddings and query_labels together (or neither, to compare to self)")
    similarity, rerank_k = settings.similarity, settings.rerank_k
    chunk_size, reference_chunk_size = settings.chunk_size, settings.reference_chunk_size
    separate_queries = query_embeddings is not None
    exclude_self = not separate_queries
    scores_all_pairs = settings.scores_all_pairs
    target = choose_device(settings.device, embeddings, query_embeddings)
    reference_labels, query_label_vector = as_label_vectors(labels, query_labels, target)
    if query_label_vector is None:
        query_label_vector = reference_labels

    if similarity is not None:  # what the custom similarity receives
        similarity_references = to_device(
            embeddings if similarity_inputs is None else similarity_inputs, target
        )
        similarity_queries = (
            similarity_references
            if not separate_queries
            else to_device(
                query_embeddings if query_similarity_inputs is None else query_similarity_inputs, target
            )
        )
    if scores_all_pairs:
        references, queries = similarity_references, similarity_queries
    else:
        references, queries = _prepared_sets(
            embeddings, query_embeddings, target, settings.normalize, settings.binarize
        )
    _check_lengths(queries, query_label_vector, references, reference_labels, separate_queries)

    num_relevant = relevant_counts(query_label_vector, reference_labels, exclude_self)
    if not bool((num_relevant > 0).any()):
        where = "in the gallery" if separate_queries else "(every class has a single sample)"
        raise DatasetError(f"no query has a relevant item {where}; retrieval metrics are undefined")
    recall_at = _checked_recall_at(settings.recall_at)
    num_candidates = row_count(references) - int(exclude_self)
    k = _neighbour_count(settings.k, int(num_relevant.max()), recall_at, num_candidates)

    if similarity is not None and rerank_k is None:  # scores all pairs
        blocks = knn_blocks(
            queries,
            references,
            k,
            exclude_self=exclude_self,
            score=checked_similarity(similarity),
            chunk_size=chunk_size or DEFAULT_SIMILARITY_BLOCK[0],
            reference_chunk_size=reference_chunk_size or DEFAULT_SIMILARITY_BLOCK[1],
        )
    else:
        candidate_k = k if similarity is None else _checked_rerank_k(rerank_k, k, num_candidates)
        blocks = _plain_blocks(
            queries,
            references,
            candidate_k,
            exclude_self=exclude_self,
            backend=settings.backend,
            ranking=settings.ranking,
            device=target,
            chunk_size=chunk_size,
            reference_chunk_size=reference_chunk_size,
            symmetric=settings.symmetric,
        )
        if similarity is not None:
            blocks = _reranked(blocks, similarity, k, similarity_queries, similarity_references)

    results = _mean_metrics(blocks, query_label_vector, reference_labels, num_relevant, recall_at)
    if settings.nmi or settings.ami:
        assignment = kmeans(queries, int(torch.unique(query_label_vector).numel()), seed=settings.kmeans_seed)
        results.update(clustering_scores(query_label_vector, assignment, nmi=settings.nmi, ami=settings.ami))
    return results


def _prepared_sets(embeddings, query_embeddings, device, normalize, binarize):
    """(references, queries) as float32 matrices, normalised or binarised as asked."""
    references = _prepared(as_float_matrix(embeddings, "embeddings", device), normalize, binarize)
    if query_embeddings is None:
        return references, references
    queries = _prepared(as_float_matrix(query_embeddings, "query_embeddings", device), normalize, binarize)
    if queries.shape[1] != references.shape[1]:
        raise DatasetError(
            f"query_embeddings have {queries.shape[1]} dims but embeddings have {references.shape[1]}"
        )
    return references, queries


def _mean_metrics(blocks, query_labels, reference_labels, num_relevant, recall_at) -> dict[str, float]:
    """Accumulate each block's metric sums; divide by the number of queries with R > 0."""
    totals: dict[str, torch.Tensor] = {}
    for rows, _, indices in blocks:
        hits = neighbour_hits(indices, query_labels[rows], reference_labels)
        for name, value in retrieval_sums(hits, num_relevant[rows], recall_at).items():
            totals[name] = totals[name] + value if name in totals else value
    count = totals.pop("num_queries")
    return {name: float(total / count) for name, total in totals.items()}


def _prepared(embeddings: torch.Tensor, normalize: bool, binarize: bool) -> torch.Tensor:
    """Binary codes in {-1, +1} (sign of x > 0) or, optionally, L2-normalised rows."""
    if binarize:
        return torch.where(embeddings > 0, 1.0, -1.0)
    if normalize:
        return torch.nn.functional.normalize(embeddings, p=2, dim=1)
    return embeddings


def _check_lengths(
    queries: Any,
    query_labels: torch.Tensor,
    references: Any,
    reference_labels: torch.Tensor,
    separate_queries: bool,
) -> None:
    if row_count(references) != len(reference_labels):
        raise DatasetError(
            f"embeddings have {row_count(references)} rows but labels have {len(reference_labels)} entries"
        )
    if separate_queries and row_count(queries) != len(query_labels):
        raise DatasetError(
            f"query_embeddings have {row_count(queries)} rows but query_labels have {len(query_labels)} entries"
        )


def _checked_recall_at(recall_at: Sequence[int]) -> tuple[int, ...]:
    values = tuple(recall_at)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"recall_at values must be positive integers, got {value!r}")
    return values


def _neighbour_count(k: int | None, largest_r: int, recall_at: tuple[int, ...], num_candidates: int) -> int:
    """k as the module doc says: at least the largest R (and Recall@K's K), at most all candidates."""
    needed = max([largest_r, *recall_at, 1])
    if k is None:
        return min(needed, num_candidates)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive integer or None, got {k!r}")
    if k < min(largest_r, num_candidates):
        raise ConfigError(
            f"k={k} is smaller than the largest number of relevant items per query ({largest_r}), "
            "which R-Precision and MAP@R need; leave k unset (None) or pass k >= "
            f"{largest_r}"
        )
    too_large = [K for K in recall_at if k < K and k < num_candidates]
    if too_large:
        raise ConfigError(
            f"k={k} is smaller than recall_at K={max(too_large)}; leave k unset or pass k >= {max(too_large)}"
        )
    return min(k, num_candidates)


def _use_symmetric(
    symmetric: bool | None, exclude_self: bool, backend: str, device: torch.device, k: int, num_samples: int
) -> bool:
    """Symmetric blocks pay on CPU (matrix products dominate) when k is small next to a block
    and the running [N, k] top-k stays small; on GPUs the plain row blocks are faster."""
    possible = exclude_self and backend == "torch"
    if symmetric is not None:
        if symmetric and not possible:
            raise ConfigError("symmetric=True needs compared-to-self evaluation with backend='torch'")
        return symmetric
    return (
        possible
        and device.type == "cpu"
        and k <= SYMMETRIC_MAX_K
        and num_samples * k * 12 <= SYMMETRIC_RUNNING_BYTES
    )


def _plain_blocks(
    queries,
    references,
    k,
    *,
    exclude_self,
    backend,
    ranking,
    device,
    chunk_size,
    reference_chunk_size,
    symmetric,
):
    """Blocks of the plain k-NN by a built-in ranking: symmetric blocks, faiss, or row blocks."""
    if _use_symmetric(symmetric, exclude_self, backend, device, k, len(references)):
        return symmetric_knn_blocks(
            references, k, score=builtin_score(ranking), block_size=chunk_size or DEFAULT_SYMMETRIC_BLOCK
        )
    chunk = chunk_size or default_chunk_size(len(references), device)
    if backend == "faiss":
        from dmlbench.evaluation.faiss_knn import faiss_knn_blocks

        return faiss_knn_blocks(
            queries, references, k, exclude_self=exclude_self, ranking=ranking, chunk_size=chunk
        )
    return knn_blocks(
        queries,
        references,
        k,
        exclude_self=exclude_self,
        score=builtin_score(ranking),
        chunk_size=chunk,
        reference_chunk_size=reference_chunk_size,
    )


def _checked_rerank_k(rerank_k: int | None, k: int, num_candidates: int) -> int:
    if isinstance(rerank_k, bool) or not isinstance(rerank_k, int) or rerank_k < 1:
        raise ConfigError(
            f"rerank_k must be a positive integer (or None to score all pairs), got {rerank_k!r}"
        )
    if rerank_k < k and rerank_k < num_candidates:
        raise ConfigError(
            f"rerank_k={rerank_k} is smaller than k={k} (the neighbours MAP@R needs); pass rerank_k >= {k}"
        )
    return min(rerank_k, num_candidates)


def _reranked(plain_blocks, similarity, k, similarity_queries, similarity_references):
    """Re-score each block's candidates with the custom similarity."""
    for rows, _, candidates in plain_blocks:
        values, indices = rerank(
            select_rows(similarity_queries, rows), similarity_references, candidates, similarity, k
        )
        yield rows, values, indices
