"""One query's neighbours, ranked as report.html ranks them."""

from __future__ import annotations

import torch


def rank_query(embeddings: torch.Tensor, query: int, top: int) -> tuple[list[int], list[float]]:
    """The ``top`` nearest other samples of row ``query`` by cosine similarity, with their
    similarities: the report's k-NN (float64, :func:`dmlbench.evaluation.knn.exact_topk`, its tie
    rule), for one query."""
    from dmlbench.evaluation.knn import builtin_score, exact_topk

    normalised = torch.nn.functional.normalize(embeddings.double(), dim=1)
    scores, indices = exact_topk(
        normalised[query : query + 1],
        normalised,
        min(top, len(normalised) - 1),
        score=builtin_score("dot"),
        self_index=torch.tensor([query]),
    )
    return [int(i) for i in indices[0]], [float(s) for s in scores[0]]
