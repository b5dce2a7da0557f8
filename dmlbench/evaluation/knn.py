"""Exact k nearest neighbours in memory-bounded blocks (torch), with the tie rule of topk.py.

Scores, higher = nearer:
  - ``"dot"``: <q, r> (cosine similarity on L2-normalised embeddings; on binary codes
    b in {-1, +1}^D it is D - 2 * Hamming(q, r), so it ranks by Hamming distance);
  - ``"euclidean"``: -||q - r||^2;
  - a custom ``similarity(query_block, reference_block) -> Tensor[q, r]`` (see ``Similarity``).

Queries are processed ``chunk_size`` at a time; references ``reference_chunk_size`` at a time
(default: all at once for the built-in scores), keeping a running top-k per query. No N x N
matrix is ever formed: the largest temporary is one [chunk_size, reference_chunk_size] block
of scores (plus a few of its size for ties and the top-k). ``symmetric_knn_blocks`` halves
the matrix products when the queries are the references (compared to self, CPU).

Compared to self (``exclude_self``): query i is reference i, and is never its own neighbour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import torch

from dmlbench.errors import ConfigError
from dmlbench.evaluation.inputs import row_count, select_rows
from dmlbench.evaluation.topk import add_part, merge_topk, sort_by_score_then_index, topk_lowest_index_ties

#: Default size of one block of scores, per device type (bytes). Peak extra memory of a k-NN
#: pass is a small multiple of this (about 3x with top-k and tie temporaries).
DEFAULT_BLOCK_BYTES = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}

BUILTIN_RANKINGS = ("dot", "euclidean")


class Similarity(Protocol):
    """Contract of a custom pairwise similarity (e.g. AVSL's distance, negated).

    ``similarity(query_block, reference_block)`` gets two blocks of per-sample inputs (a tensor
    whose first dimension is samples, or a tuple/list/dict of such tensors, exactly as the caller
    passed them, on the evaluation device) and returns a floating tensor [q, r]: entry (i, j)
    scores query i against reference j, higher = more similar, finite. It must not depend on
    which other samples are in the blocks (blocks are arbitrary slices).

    Optional, for re-ranking: an attribute ``paired(query_rows, reference_rows) -> Tensor[m]``
    scoring row i of the first against row i of the second (both hold m rows). It must agree
    with the matrix form: ``paired(a, b)[i] == similarity(a, b)[i, i]``. Without it, re-ranking
    calls the matrix form once per query on that query's candidates.
    """

    def __call__(self, query_block: Any, reference_block: Any) -> torch.Tensor: ...


ScoreFunction = Callable[[Any, Any], torch.Tensor]


def builtin_score(ranking: str) -> ScoreFunction:
    """The block score function of a built-in ranking (``"dot"`` or ``"euclidean"``)."""
    if ranking == "dot":
        return lambda queries, refs: queries @ refs.T
    if ranking == "euclidean":

        def negative_squared_distance(queries: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
            scores = queries @ refs.T
            scores.mul_(2).sub_((refs * refs).sum(dim=1)[None, :]).sub_(
                (queries * queries).sum(dim=1)[:, None]
            )
            return scores

        return negative_squared_distance
    raise ConfigError(f"unknown ranking {ranking!r}; choose one of {', '.join(BUILTIN_RANKINGS)}")


def checked_similarity(similarity: Callable[[Any, Any], torch.Tensor]) -> ScoreFunction:
    """Wrap a custom similarity so that a wrong shape, dtype or value fails with a clear message."""

    def score(query_block: Any, reference_block: Any) -> torch.Tensor:
        scores = similarity(query_block, reference_block)
        expected = (row_count(query_block), row_count(reference_block))
        if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != expected:
            got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise ConfigError(
                f"similarity {_name(similarity)} must return a tensor of shape {expected}, got {got}"
            )
        if not scores.is_floating_point():
            scores = scores.float()
        if not bool(torch.isfinite(scores).all()):
            raise ConfigError(f"similarity {_name(similarity)} returned NaN or infinite scores")
        return scores

    return score


def _name(function: Any) -> str:
    return getattr(function, "__qualname__", None) or type(function).__name__


def default_chunk_size(num_references: int, device: torch.device, block_bytes: int | None = None) -> int:
    """Queries per block so that one float32 block of scores fits ``block_bytes``."""
    budget = block_bytes or DEFAULT_BLOCK_BYTES.get(device.type, DEFAULT_BLOCK_BYTES["cpu"])
    return max(1, budget // (4 * max(1, num_references)))


def knn_blocks(
    queries: Any,
    references: Any,
    k: int,
    *,
    exclude_self: bool = False,
    score: ScoreFunction,
    chunk_size: int,
    reference_chunk_size: int | None = None,
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
    """Yield ``(query_rows, scores, indices)`` per block of queries: the k nearest references
    of queries ``query_rows``, [q, k] each, ordered by the tie rule.

    ``exclude_self`` requires queries and references to be the same samples.
    """
    num_queries = row_count(queries)
    for start in range(0, num_queries, chunk_size):
        rows = slice(start, min(start + chunk_size, num_queries))
        self_index = torch.arange(rows.start, rows.stop) if exclude_self else None
        values, indices = exact_topk(
            select_rows(queries, rows),
            references,
            k,
            score=score,
            self_index=self_index,
            reference_chunk_size=reference_chunk_size,
        )
        yield rows, values, indices


def exact_topk(
    queries: Any,
    references: Any,
    k: int,
    *,
    score: ScoreFunction,
    self_index: torch.Tensor | None = None,
    reference_chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest references of every query (one block of queries), by the tie rule.

    ``self_index[i]`` is the reference index that query i must not get as a neighbour (or -1).
    Returns ``(scores, indices)`` [q, k].
    """
    num_references = row_count(references)
    step = reference_chunk_size or num_references
    parts: list[tuple[torch.Tensor, torch.Tensor]] = []
    for start in range(0, num_references, step):
        stop = min(start + step, num_references)
        block = (
            references
            if (start == 0 and stop == num_references)
            else select_rows(references, slice(start, stop))
        )
        scores = score(queries, block)
        if self_index is not None:
            _mask_self(scores, self_index.to(scores.device), start, stop)
        values, indices = topk_lowest_index_ties(scores, k)
        del scores
        add_part(parts, (values, indices + start), k)
    return merge_topk(parts, k)


def symmetric_knn_blocks(
    embeddings: torch.Tensor,
    k: int,
    *,
    score: ScoreFunction,
    block_size: int,
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
    """Compared to self with a symmetric score (dot, euclidean, Hamming): each pair of blocks
    (i, j >= i) is scored once, and its [b_i, b_j] scores serve block i's queries (rows) and
    block j's queries (columns). Half the matrix products of ``knn_blocks``; yields the same
    blocks, in order, once each block has seen every reference.

    Every query receives its candidates in increasing reference ranges (blocks 0, 1, ...), as
    ``merge_topk`` needs. Extra memory: a few [block_size, block_size] blocks plus one running
    [N, k] top-k, allocated once (long-lived small allocations between the large transient
    blocks would fragment the heap).
    """
    num_samples = len(embeddings)
    best_values = torch.full((num_samples, k), float("-inf"), device=embeddings.device)
    best_indices = torch.full((num_samples, k), -1, dtype=torch.long, device=embeddings.device)

    def merge_into(rows: slice, values: torch.Tensor, indices: torch.Tensor) -> None:
        merged_values, merged_indices = merge_topk(
            [(best_values[rows], best_indices[rows]), (values, indices)], k
        )
        best_values[rows], best_indices[rows] = merged_values, merged_indices

    for row_start in range(0, num_samples, block_size):
        row_block = slice(row_start, min(row_start + block_size, num_samples))
        rows = embeddings[row_block]
        for column_start in range(row_start, num_samples, block_size):
            column_block = slice(column_start, min(column_start + block_size, num_samples))
            scores = score(rows, embeddings[column_block])
            if column_start == row_start:
                scores.diagonal().fill_(float("-inf"))
            values, indices = topk_lowest_index_ties(scores, k)
            merge_into(row_block, values, indices + column_start)
            if column_start > row_start:
                values, indices = topk_lowest_index_ties(scores.T.contiguous(), k)
                merge_into(column_block, values, indices + row_start)
            del scores
        yield row_block, best_values[row_block], best_indices[row_block]


def _mask_self(scores: torch.Tensor, self_index: torch.Tensor, start: int, stop: int) -> None:
    """Give -inf to each query's own column if it lies in reference columns [start, stop)."""
    inside = (self_index >= start) & (self_index < stop)
    rows = inside.nonzero().squeeze(1)
    if rows.numel():
        scores[rows, self_index[rows] - start] = float("-inf")


def rerank(
    queries: Any,
    references: Any,
    candidates: torch.Tensor,
    similarity: Callable[[Any, Any], torch.Tensor],
    k: int,
    *,
    max_pairs: int = 1 << 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-score each query's candidate references [q, c] with ``similarity`` and keep the first
    k by the tie rule. Uses ``similarity.paired`` when present (at most ``max_pairs`` pairs per
    call), else one matrix-form call per query."""
    num_queries, num_candidates = candidates.shape
    paired = getattr(similarity, "paired", None)
    scores = torch.empty(candidates.shape, dtype=torch.float32, device=candidates.device)
    if callable(paired):
        queries_per_call = max(1, max_pairs // max(1, num_candidates))
        for start in range(0, num_queries, queries_per_call):
            stop = min(start + queries_per_call, num_queries)
            query_rows = torch.arange(start, stop, device=candidates.device).repeat_interleave(num_candidates)
            pair_scores = paired(
                select_rows(queries, query_rows), select_rows(references, candidates[start:stop].reshape(-1))
            )
            if not isinstance(pair_scores, torch.Tensor) or pair_scores.numel() != len(query_rows):
                raise ConfigError(
                    f"similarity.paired of {_name(similarity)} must return one score per pair "
                    f"({len(query_rows)}), got {getattr(pair_scores, 'shape', type(pair_scores).__name__)}"
                )
            scores[start:stop] = pair_scores.reshape(stop - start, num_candidates).to(scores.dtype)
    else:
        checked = checked_similarity(similarity)
        for row in range(num_queries):
            query = select_rows(queries, slice(row, row + 1))
            scores[row] = checked(query, select_rows(references, candidates[row]))[0].to(scores.dtype)
    if not bool(torch.isfinite(scores).all()):
        raise ConfigError(f"similarity {_name(similarity)} returned NaN or infinite scores")
    scores, indices = sort_by_score_then_index(scores, candidates)
    return scores[:, :k], indices[:, :k]


def exact_knn(
    queries: torch.Tensor,
    references: torch.Tensor | None = None,
    k: int = 1,
    *,
    ranking: str = "dot",
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k-NN of every query, [num_queries, k] scores and indices, by the tie rule.

    ``references=None`` compares the queries to themselves, excluding each from its own list.
    Memory: the [num_queries, k] result plus one block of scores.
    """
    exclude_self = references is None
    references = queries if references is None else references
    available = len(references) - int(exclude_self)
    if not 1 <= k <= available:
        raise ConfigError(f"k={k} must be between 1 and the number of candidate neighbours ({available})")
    chunk = chunk_size or default_chunk_size(len(references), queries.device)
    parts = list(
        knn_blocks(
            queries, references, k, exclude_self=exclude_self, score=builtin_score(ranking), chunk_size=chunk
        )
    )
    return torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])
