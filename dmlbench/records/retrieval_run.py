"""Retrieval examples of a trained experiment, from plain data: given the test split's
embeddings of the best fold's ``best.pt`` and of every fold (their concatenation), draw the
grids, the per-class MAP@R and the precision-recall-style curves
(:mod:`dmlbench.records.retrieval_examples`) under ``meta/plots/``. Which folds to embed comes
from :func:`example_folds`; the embedding itself is the caller's (the test's embeddings, or
embedded again for ``python -m dmlbench.report``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from dmlbench.data.folds import evaluation_roles
from dmlbench.records import retrieval_examples as rx

PLOTS = {
    "best_fold": "retrieval_best_fold.png",
    "concatenated": "retrieval_concatenated.png",
    "per_class": "per_class_map_at_r.png",
    "precision_recall": "precision_recall.png",
}


@dataclass(frozen=True)
class ExampleFolds:
    """The folds whose embeddings of ``split`` the examples draw: ``best_fold`` and ``schemes``
    (every fold when they all share the split's samples ``indices``, else the best fold alone).
    A query-vs-gallery split has ``indices`` = its queries then its gallery, the gallery from
    position ``gallery_start``."""

    split: str
    best_fold: str
    schemes: list[str]
    indices: np.ndarray
    gallery_start: int | None = None


def best_scheme(training: dict[str, Any], schemes: list[str]) -> str:
    """The fold with the highest best validation score (the first fold when none is known)."""
    scored = [
        (info.get("best_score"), scheme)
        for scheme, info in training.items()
        if scheme in schemes and info.get("best_score") is not None
    ]
    return max(scored, key=lambda pair: (pair[0], -schemes.index(pair[1])))[1] if scored else schemes[0]


def example_samples(by_split: dict[str, np.ndarray], split: str) -> tuple[np.ndarray, int | None] | None:
    """A fold's samples of ``split`` and where its gallery starts: the split compared to itself
    (None), or the queries then the gallery (:func:`dmlbench.data.folds.evaluation_roles`);
    None when the fold has neither."""
    roles = evaluation_roles(by_split, split)
    if roles is None:
        return None
    if "self" in roles:
        return np.asarray(roles["self"]), None
    return np.concatenate([roles["query"], roles["gallery"]]), len(roles["query"])


def example_folds(
    fold_indices: dict[str, dict[str, np.ndarray]], training: dict[str, Any], split: str
) -> ExampleFolds | str:
    """The folds to embed for the examples of ``split``, from each fold's ``{split: indices}``
    (in fold order) and the training outcome; or the reason there are no examples."""
    schemes = list(fold_indices)
    chosen = best_scheme(training, schemes)
    samples = example_samples(fold_indices[chosen], split)
    if samples is None:
        return f"split {split!r} does not exist in {chosen}; splits: {', '.join(fold_indices[chosen])}"
    indices, gallery_start = samples
    same = [example_samples(by_split, split) for by_split in fold_indices.values()]
    if not all(other is not None and np.array_equal(other[0], indices) for other in same):
        schemes = [chosen]  # per-fold splits (val): no ensemble
    return ExampleFolds(split, chosen, schemes, indices, gallery_start)


def write_retrieval_examples(
    folds: ExampleFolds,
    labels: torch.Tensor,
    best_fold: torch.Tensor,
    concatenated: torch.Tensor | None,
    load_image: Callable[[int], Image.Image],
    plots_dir: Path,
    queries: int = 8,
    top_k: int = 5,
) -> dict[str, Any]:
    """Draw the retrieval figures of ``folds.split`` from the best fold's embeddings [N, D] (and
    the concatenated ones of ``folds.schemes``, if given), ``labels`` [N] and ``load_image``
    (data set index -> image); -> what the report shows (figures, queries, worst classes)."""
    models_to_draw = {f"best fold ({folds.best_fold})": best_fold}
    if concatenated is not None:
        models_to_draw[f"concatenated ({len(folds.schemes)} folds)"] = concatenated
    label_array = labels.numpy()
    dataset_indices = np.asarray(folds.indices)
    per_class, curves, grids = {}, {}, []
    for (name, embeddings), plot_key in zip(models_to_draw.items(), ("best_fold", "concatenated")):
        neighbours = rx.neighbours_for_metrics(embeddings, labels, top_k, gallery_start=folds.gallery_start)
        scores = rx.per_query_map_at_r(neighbours, labels, folds.gallery_start)
        queries_here = rx.choose_queries(scores, queries)
        top = neighbours[queries_here, :top_k].numpy()
        rx.draw_grid(
            lambda i: load_image(int(dataset_indices[i])),
            queries_here,
            top,
            label_array,
            plots_dir / PLOTS[plot_key],
        )
        grids.append(
            {
                "name": name,
                "plot": PLOTS[plot_key],
                "queries": queries_here,
                "query_map_at_r": [float(scores[q]) for q in queries_here],
            }
        )
        per_class[name] = rx.per_class_map_at_r(scores, label_array[: len(scores)])
        curves[name] = rx.precision_recall_curve(neighbours, labels, folds.gallery_start)
    rx.plot_per_class(per_class, plots_dir / PLOTS["per_class"])
    rx.plot_precision_recall(curves, plots_dir / PLOTS["precision_recall"])
    first = next(iter(per_class.values()))
    worst = sorted(first, key=lambda c: (first[c], c))[:5]
    return {
        "split": folds.split,
        "best_fold": folds.best_fold,
        "top_k": top_k,
        "grids": grids,
        "worst_classes": [{"label": c, "map_at_r": first[c]} for c in worst],
        "plots": [PLOTS["per_class"], PLOTS["precision_recall"]],
        "note": (
            "neighbours by cosine similarity of the embeddings; the precision-recall curve averages "
            "precision@i and recall@i over the queries for ranks i up to 4 x the largest R"
            + (
                ""
                if folds.gallery_start is None
                else f"; queries from the {folds.gallery_start} query images, neighbours from the "
                f"{len(folds.indices) - folds.gallery_start} gallery images"
            )
        ),
    }
