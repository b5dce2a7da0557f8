"""Retrieval examples of a trained experiment: embed the test split with the best fold's
``best.pt`` and with every fold (their concatenation; the embeddings of a test run just before
are reused), then draw the grids, the per-class MAP@R
and the precision-recall-style curves (:mod:`dmlbench.records.retrieval_examples`) under
``meta/plots/``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dmlbench.evaluation import protocol
from dmlbench.evaluation.ensemble import concatenate_normalized
from dmlbench.records import retrieval_examples as rx

if TYPE_CHECKING:
    from dmlbench.runner import Experiment

PLOTS = {
    "best_fold": "retrieval_best_fold.png",
    "concatenated": "retrieval_concatenated.png",
    "per_class": "per_class_map_at_r.png",
    "precision_recall": "precision_recall.png",
}


def best_scheme(training: dict[str, Any], schemes: list[str]) -> str:
    """The fold with the highest best validation score (the first fold when none is known)."""
    scored = [
        (info.get("best_score"), scheme)
        for scheme, info in training.items()
        if scheme in schemes and info.get("best_score") is not None
    ]
    return max(scored, key=lambda pair: (pair[0], -schemes.index(pair[1])))[1] if scored else schemes[0]


def write_retrieval_examples(
    experiment: Experiment, training: dict[str, Any], queries: int = 8, top_k: int = 5, split: str = "test"
) -> dict[str, Any]:
    """Draw the retrieval figures of ``split``; -> what the report shows (figures, queries,
    worst classes), or ``{"skipped": reason}`` when the split is not compared to itself."""
    folds = experiment.folds
    if split not in folds[0].indices:
        return {
            "skipped": f"split {split!r} is scored query against gallery; examples need a self-compared split"
        }
    chosen_fold = best_scheme(training, [fold.scheme for fold in folds])
    indices = next(fold.indices[split] for fold in folds if fold.scheme == chosen_fold)
    if not all(np.array_equal(fold.indices[split], indices) for fold in folds):
        folds = [fold for fold in folds if fold.scheme == chosen_fold]  # per-fold splits (val): no ensemble
    embedded: dict[str, torch.Tensor] = {}
    labels = None
    for fold in folds:
        cached = experiment.trained_embeddings.get((split, fold.scheme))  # from the test just run
        if cached is not None:
            embeddings, labels = cached
        else:
            models, _, _ = protocol.fold_models(experiment, fold, "trained")
            embeddings, labels = protocol.embed(
                experiment,
                models["trunk"],
                models["embedder"],
                experiment.subset_of(indices, models["trunk"]),
                f"{fold.scheme} {split} examples",
                collective=False,
            )  # rank 0 only
        embedded[fold.scheme] = embeddings.cpu()
    assert labels is not None
    labels = labels.cpu()
    models_to_draw = {f"best fold ({chosen_fold})": embedded[chosen_fold]}
    if len(embedded) > 1:
        models_to_draw[f"concatenated ({len(embedded)} folds)"] = concatenate_normalized(
            list(embedded.values())
        )
    plots_dir = experiment.meta_dir / "plots"
    label_array = labels.numpy()
    dataset_indices = np.asarray(indices)
    per_class, curves, grids = {}, {}, []
    chosen: list[int] = []
    for (name, embeddings), plot_key in zip(models_to_draw.items(), ("best_fold", "concatenated")):
        neighbours = rx.neighbours_for_metrics(embeddings, labels, top_k)
        scores = rx.per_query_map_at_r(neighbours, labels)
        queries_here = rx.choose_queries(scores, queries)
        top = neighbours[queries_here, :top_k].numpy()
        rx.draw_grid(
            lambda i: experiment.dataset.load_image(int(dataset_indices[i])),
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
        per_class[name] = rx.per_class_map_at_r(scores, label_array)
        curves[name] = rx.precision_recall_curve(neighbours, labels)
        chosen = chosen or queries_here
    rx.plot_per_class(per_class, plots_dir / PLOTS["per_class"])
    rx.plot_precision_recall(curves, plots_dir / PLOTS["precision_recall"])
    first = next(iter(per_class.values()))
    worst = sorted(first, key=lambda c: (first[c], c))[:5]
    return {
        "split": split,
        "best_fold": chosen_fold,
        "top_k": top_k,
        "grids": grids,
        "worst_classes": [{"label": c, "map_at_r": first[c]} for c in worst],
        "plots": [PLOTS["per_class"], PLOTS["precision_recall"]],
        "note": (
            "neighbours by cosine similarity of the embeddings; the precision-recall curve averages "
            "precision@i and recall@i over the queries for ranks i up to 4 x the largest R"
        ),
    }
