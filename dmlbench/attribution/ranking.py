"""One query's neighbours, ranked as report.html ranks them."""

from __future__ import annotations

import torch


def rank_query(
    embeddings: torch.Tensor, query: int, top: int, gallery_start: int | None = None
) -> tuple[list[int], list[float]]:
    """The ``top`` nearest other samples of row ``query`` by cosine similarity, with their
    similarities: the report's k-NN (float64, :func:`dmlbench.evaluation.knn.exact_topk`, its tie
    rule), for one query. With ``gallery_start`` the candidates are the gallery rows
    ``embeddings[gallery_start:]`` (indices still into ``embeddings``)."""
    from dmlbench.evaluation.knn import builtin_score, exact_topk

    normalised = torch.nn.functional.normalize(embeddings.double(), dim=1)
    start = 0 if gallery_start is None else gallery_start
    candidates = normalised[start:]
    scores, indices = exact_topk(
        normalised[query : query + 1],
        candidates,
        min(top, len(candidates) - int(gallery_start is None)),
        score=builtin_score("dot"),
        self_index=torch.tensor([query]) if gallery_start is None else None,
    )
    return [int(i) + start for i in indices[0]], [float(s) for s in scores[0]]
