"""Explanations for report.html: the first few retrieval-example queries of the best fold, each
with its top-k neighbours (ranked as the grid ranks them), drawn small under ``meta/plots/``.

Plain inputs (the fold's models, its embeddings of the split, an image loader), so the report
writer stays free of experiment loading. A model the decomposition does not cover (a trunk without
spatial maps, e.g. AVSL's multi-level trunk) gives ``{"skipped": reason}``: the report never fails
for its explanations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dmlbench.attribution.draw import Neighbour, display_image, draw_explanation, explanation_record
from dmlbench.attribution.pairs import explain_pairs
from dmlbench.attribution.ranking import rank_query
from dmlbench.errors import ConfigError

#: Resolution of the report's explanation figures (small: they are embedded in the page).
REPORT_DPI = 72


def plot_name(query: int) -> str:
    return f"explain_query{query}.png"


def explain_examples(
    models: dict[str, nn.Module],
    load_image: Callable[[int], torch.Tensor],
    normalization: dict[str, Any],
    embeddings: torch.Tensor,
    labels: Sequence[int],
    queries: Sequence[int],
    top_k: int,
    plots_dir: Path,
    title: str,
    gallery_start: int | None = None,
) -> dict[str, Any]:
    """Explain each query of ``queries`` (indices into the split) against its ``top_k`` nearest
    neighbours by the cosine of ``embeddings`` (among the gallery rows from ``gallery_start``,
    if given); ``load_image(i)`` is sample i's evaluation image [3, H, W].
    -> ``{"items": [{"query", "plot", "exact", "neighbours"}], "top_k"}``."""
    items = []
    for query in queries:
        order, scores = rank_query(embeddings, int(query), top_k, gallery_start)
        neighbours = [Neighbour(i, int(labels[i]), s) for i, s in zip(order, scores)]
        images = [load_image(i) for i in [int(query), *order]]
        try:
            explanations = explain_pairs([models], images)
        except ConfigError as error:
            return {"skipped": f"no explanations: {error}"}
        draw_explanation(
            plots_dir / plot_name(int(query)),
            [display_image(image, normalization) for image in images],
            int(labels[query]),
            neighbours,
            explanations,
            f"{title}, query {query}",
            dpi=REPORT_DPI,
            palette=True,
        )
        record = explanation_record(int(query), int(labels[query]), neighbours, explanations)
        items.append(
            {
                **record,
                "plot": plot_name(int(query)),
                "exact": all(n["exact"] for n in record["neighbours"]),
            }
        )
    return {"items": items, "top_k": top_k}
