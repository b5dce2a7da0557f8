"""Top-k selection that obeys dmlbench's tie rule.

Tie rule: neighbours are ordered by score, highest first; neighbours with exactly equal scores
are ordered by reference index, lowest first. So the k nearest neighbours of a query are the
first k references under the order (score descending, index ascending), whatever the backend,
the chunk sizes or the order in which ``torch.topk`` happens to return equal values.

Missing entries (a block with fewer references than k, or the excluded self) carry the score
``-inf`` and the index ``-1``; they sort after every real neighbour.
"""

from __future__ import annotations

import torch

MISSING_INDEX = -1


def sort_by_score_then_index(
    values: torch.Tensor, indices: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder each row of ``(values, indices)`` [q, m] by (value descending, index ascending).

    Two stable sorts: by index first, then by value; the second keeps the index order among
    equal values.
    """
    if values.shape[1] <= 1:
        return values, indices
    by_index = indices.argsort(dim=1, stable=True)
    values, indices = values.gather(1, by_index), indices.gather(1, by_index)
    by_value = values.argsort(dim=1, descending=True, stable=True)
    return values.gather(1, by_value), indices.gather(1, by_value)


def _sort_rows_with_equal_values(
    values: torch.Tensor, indices: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``sort_by_score_then_index`` on the rows (sorted by value) that hold equal values."""
    if values.shape[1] <= 1:
        return values, indices
    rows = (values[:, 1:] == values[:, :-1]).any(dim=1).nonzero().squeeze(1)
    if rows.numel():
        values[rows], indices[rows] = sort_by_score_then_index(values[rows], indices[rows])
    return values, indices


def topk_lowest_index_ties(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``min(k, n)`` columns of each row of ``scores`` [q, n] under the tie rule.

    Returns ``(values, indices)`` [q, min(k, n)], sorted. ``torch.topk`` alone may pick any of
    several equal values at the k-th place; asking it for k + 1 values reveals such a boundary
    tie (the (k+1)-th value equals the k-th), and only those rows are redone exactly: keep the
    values strictly above the k-th value, then fill up with the lowest column indices among
    the values equal to it.
    """
    num_rows, num_columns = scores.shape
    if k >= num_columns:
        columns = torch.arange(num_columns, device=scores.device).expand(num_rows, num_columns)
        return sort_by_score_then_index(scores, columns)
    values, indices = scores.topk(k + 1, dim=1, largest=True, sorted=True)
    boundary = values[:, k - 1]
    boundary_tie = (values[:, k] == boundary) & (boundary > float("-inf"))
    values, indices = values[:, :k].contiguous(), indices[:, :k].contiguous()
    tied_rows = boundary_tie.nonzero().squeeze(1)
    if tied_rows.numel() > 0:
        _resolve_boundary_ties(scores, values, indices, tied_rows, k)
    return _sort_rows_with_equal_values(values, indices)


def _resolve_boundary_ties(
    scores: torch.Tensor, values: torch.Tensor, indices: torch.Tensor, rows: torch.Tensor, k: int
) -> None:
    """Redo rows ``rows`` in place: above-boundary entries, then the lowest tied indices.

    Works on sub-batches of rows so that its temporaries stay below the size of ``scores``.
    """
    num_rows, num_columns = scores.shape
    sub_batch = max(1, num_rows // 4)
    positions = torch.arange(k, device=scores.device)
    column_ids = torch.arange(num_columns, device=scores.device, dtype=torch.int32)
    for start in range(0, rows.numel(), sub_batch):
        part = rows[start : start + sub_batch]
        threshold = values[part, k - 1 : k]
        above = (values[part] > threshold).sum(dim=1, keepdim=True)
        key = torch.where(scores[part] == threshold, column_ids, num_columns)
        lowest_tied = key.topk(k, dim=1, largest=False, sorted=True).values.long()
        from_above = positions < above
        source = (positions - above).clamp(min=0)
        indices[part] = torch.where(from_above, indices[part], lowest_tied.gather(1, source))
        values[part] = torch.where(from_above, values[part], threshold)


def merge_topk(parts: list[tuple[torch.Tensor, torch.Tensor]], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first k of the union of candidate lists under the tie rule.

    ``parts`` are ``(values, indices)`` pairs [q, m_p] from disjoint ranges of references in
    increasing order (every index of part p below every index of part p + 1), each the first
    entries of its range under the tie rule. Then, concatenated, equal values already appear
    in increasing reference index, so one position-based selection gives the answer.
    """
    if len(parts) == 1:
        values, indices = parts[0]
        return values[:, :k], indices[:, :k]
    values = torch.cat([part[0] for part in parts], dim=1)
    indices = torch.cat([part[1] for part in parts], dim=1)
    values, positions = topk_lowest_index_ties(values, k)
    return values, indices.gather(1, positions)


def add_part(
    parts: list[tuple[torch.Tensor, torch.Tensor]],
    part: tuple[torch.Tensor, torch.Tensor],
    k: int,
    max_parts: int = 16,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Append a candidate list (next range of references); merge when there are many."""
    parts.append(part)
    if len(parts) >= max_parts:
        parts[:] = [merge_topk(parts, k)]
    return parts
