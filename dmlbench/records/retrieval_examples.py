"""Retrieval examples as the papers show them (pure functions, no experiment wiring).

For test embeddings E [N, D] and labels y [N], every sample is a query against all the others
(MLRC "compared to self"), or, for a query-vs-gallery split (In-Shop), the samples
[0, gallery_start) are the queries and [gallery_start, N) the gallery they search; neighbour
indices always index E. With rel_i = 1[y(neighbour_i) = y(query)] and R = |class| - 1 (the
query's class in the gallery, |class in gallery|):

  - per-query MAP@R = (1/R) sum_{i<=R} P@i rel_i (the metric of ``dmlbench.evaluation.metrics``);
  - per-class MAP@R = the mean of its queries' MAP@R (which classes fail);
  - precision-recall-style curve: for each rank i, precision@i = (1/i) sum_{j<=i} rel_j and
    recall@i = (1/R) sum_{j<=i} rel_j, both averaged over the queries with R > 0;
  - the grid: one row per query (the query, then its top-k neighbours), each neighbour framed
    green when rel_i = 1 and red otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from dmlbench.evaluation.knn import exact_knn
from dmlbench.evaluation.metrics import map_at_r, neighbour_hits, relevant_counts
from dmlbench.fileio import atomic_write

GREEN = (0, 170, 0)
RED = (220, 0, 0)
QUERY = (40, 40, 40)
CELL = 80  # thumbnail side in pixels
BORDER = 6  # frame width in pixels
GAP = 4  # space between cells
CAPTION = 14  # caption height under each cell


def nearest_neighbours(embeddings: torch.Tensor, k: int, gallery_start: int | None = None) -> torch.Tensor:
    """Indices [Q, k] into ``embeddings`` of each query's k nearest candidates by cosine
    similarity: every sample against the others, or (``gallery_start``) the queries
    ``embeddings[:gallery_start]`` against the gallery ``embeddings[gallery_start:]``."""
    normalised = torch.nn.functional.normalize(embeddings.double(), dim=1)
    if gallery_start is None:
        return exact_knn(normalised, None, k)[1]
    return exact_knn(normalised[:gallery_start], normalised[gallery_start:], k)[1] + gallery_start


def relevant_per_query(labels: torch.Tensor, gallery_start: int | None = None) -> torch.Tensor:
    """R [Q] of each query: the other samples of its class, or its class's gallery samples."""
    if gallery_start is None:
        return relevant_counts(labels, labels, exclude_self=True)
    return relevant_counts(labels[:gallery_start], labels[gallery_start:], exclude_self=False)


def query_hits(neighbours: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """rel [Q, k] of the queries (the first Q samples) and their ``neighbours`` (indices into ``labels``)."""
    return neighbour_hits(neighbours, labels[: len(neighbours)], labels)


def neighbours_for_metrics(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    top_k: int,
    depth: int = 4,
    gallery_start: int | None = None,
) -> torch.Tensor:
    """k-NN with k = max(top_k, depth * largest R), capped at the candidates (N - 1, or the
    gallery): MAP@R is not truncated and the precision-recall curve runs to rank depth * R."""
    largest_r = int(relevant_per_query(labels, gallery_start).max())
    candidates = len(labels) - 1 if gallery_start is None else len(labels) - gallery_start
    return nearest_neighbours(
        embeddings, max(1, min(candidates, max(top_k, depth * largest_r))), gallery_start
    )


def per_query_map_at_r(
    neighbours: torch.Tensor, labels: torch.Tensor, gallery_start: int | None = None
) -> np.ndarray:
    """MAP@R of every query (NaN where the query's class has no other sample)."""
    hits = query_hits(neighbours, labels)
    return map_at_r(hits, relevant_per_query(labels, gallery_start)).cpu().numpy()


def choose_queries(scores: np.ndarray, count: int) -> list[int]:
    """Deterministic queries: the ceil(count/2) worst (lowest score, then lowest index), then
    the rest evenly spaced over the remaining samples in index order. NaN scores are skipped."""
    valid = np.flatnonzero(~np.isnan(scores))
    count = min(count, len(valid))
    order = valid[np.lexsort((valid, scores[valid]))]
    worst = [int(i) for i in order[: (count + 1) // 2]]
    rest = np.array(sorted(set(valid.tolist()) - set(worst)), dtype=int)
    extra = count - len(worst)
    spaced = [int(rest[int(p)]) for p in np.linspace(0, len(rest) - 1, extra)] if extra and len(rest) else []
    return worst + spaced


def frame_colours(
    query_label: int, neighbour_labels: Sequence[int] | np.ndarray
) -> list[tuple[int, int, int]]:
    """Green for a neighbour of the query's class, red otherwise."""
    return [GREEN if int(label) == int(query_label) else RED for label in neighbour_labels]


def per_class_map_at_r(scores: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Mean per-query MAP@R of each class (classes with a single sample left out)."""
    result = {}
    for label in np.unique(labels):
        values = scores[(labels == label) & ~np.isnan(scores)]
        if len(values):
            result[int(label)] = float(values.mean())
    return result


def precision_recall_curve(
    neighbours: torch.Tensor, labels: torch.Tensor, gallery_start: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean recall@i and precision@i for i = 1..k over the queries with R > 0."""
    hits = query_hits(neighbours, labels).double()
    relevant = relevant_per_query(labels, gallery_start).double()
    keep = relevant > 0
    found = hits[keep].cumsum(dim=1)
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float64)
    recall = (found / relevant[keep][:, None]).mean(dim=0)
    precision = (found / ranks).mean(dim=0)
    return recall.numpy(), precision.numpy()


def cell_origin(row: int, column: int) -> tuple[int, int]:
    """Top-left pixel (x, y) of grid cell (row, column), frame included."""
    return GAP + column * (CELL + GAP), GAP + row * (CELL + CAPTION + GAP)


def draw_grid(
    load_image: Callable[[int], Image.Image],
    queries: Sequence[int],
    neighbours: np.ndarray,
    labels: np.ndarray,
    path: Path,
) -> Path:
    """The query (dark frame) and its neighbours ``neighbours[q]`` (green / red frames) per row,
    class labels as captions; written as PNG."""
    columns = 1 + neighbours.shape[1]
    width = GAP + columns * (CELL + GAP)
    height = GAP + len(queries) * (CELL + CAPTION + GAP)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for row, query in enumerate(queries):
        items = [int(query), *[int(n) for n in neighbours[row]]]
        colours = [QUERY, *frame_colours(labels[query], labels[items[1:]])]
        for column, (index, colour) in enumerate(zip(items, colours)):
            x, y = cell_origin(row, column)
            draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=colour)
            inner = CELL - 2 * BORDER
            thumbnail = load_image(index).convert("RGB").resize((inner, inner))
            canvas.paste(thumbnail, (x + BORDER, y + BORDER))
            caption = f"query {labels[index]}" if column == 0 else f"#{column}: {labels[index]}"
            draw.text((x + 2, y + CELL + 1), caption, fill=(0, 0, 0))
    with atomic_write(path, "wb") as file:
        canvas.save(file, format="PNG", optimize=True)
    return path


def plot_per_class(curves: dict[str, dict[int, float]], path: Path) -> Path:
    """Per-class MAP@R, classes sorted by the first model's score (worst left)."""
    from dmlbench.records.plots import plt, save_figure

    figure, axis = plt.subplots(figsize=(7, 3.5))
    first = next(iter(curves.values()))
    order = sorted(first, key=lambda c: (first[c], c))
    for name, values in curves.items():
        axis.plot(
            range(len(order)),
            [100 * values.get(c, np.nan) for c in order],
            marker="o",
            markersize=3,
            label=name,
        )
    step = max(1, len(order) // 20)
    axis.set_xticks(
        range(0, len(order), step), [str(order[i]) for i in range(0, len(order), step)], fontsize=7
    )
    axis.set_xlabel("test class (sorted by MAP@R)")
    axis.set_ylabel("MAP@R (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return save_figure(figure, path)


def plot_precision_recall(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Mean precision@i against mean recall@i, one line per model."""
    from dmlbench.records.plots import plt, save_figure

    figure, axis = plt.subplots(figsize=(5, 4))
    for name, (recall, precision) in curves.items():
        axis.plot(recall, precision, marker=".", label=name)
    axis.set_xlabel("mean recall@i")
    axis.set_ylabel("mean precision@i")
    axis.set_xlim(0, 1.02)
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return save_figure(figure, path)
