"""Retrieval examples against hand-made cases: the grid's frames against the labels, the query
choice, per-query and per-class MAP@R, and the precision-recall curve against naive loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from dmlbench.records import retrieval_examples as rx

# Points on a circle (angles in degrees): a query's neighbours by cosine are its nearest angles.
ANGLES = np.array([0, 10, 25, 90, 100, 200, 215, 300], dtype=np.float64)
LABELS = np.array([0, 0, 1, 1, 1, 2, 2, 0])


def embeddings() -> torch.Tensor:
    radians = np.deg2rad(ANGLES)
    return torch.tensor(np.stack([np.cos(radians), np.sin(radians)], axis=1))


def naive_neighbours(k: int) -> np.ndarray:
    """Nearest other points by angular distance (ties: lower index)."""
    out = []
    for i, a in enumerate(ANGLES):
        distance = [min(abs(a - b) % 360, 360 - abs(a - b) % 360) for b in ANGLES]
        order = sorted((d, j) for j, d in enumerate(distance) if j != i)
        out.append([j for _, j in order[:k]])
    return np.array(out)


def naive_map_at_r(neighbours: np.ndarray) -> list[float]:
    scores = []
    for i, row in enumerate(neighbours):
        r = int((LABELS[i] == LABELS).sum()) - 1
        hits = [LABELS[j] == LABELS[i] for j in row[:r]]
        scores.append(sum(sum(hits[: p + 1]) / (p + 1) for p, h in enumerate(hits) if h) / r)
    return scores


def test_neighbours_and_per_query_map_at_r_match_a_naive_computation():
    neighbours = rx.neighbours_for_metrics(embeddings(), torch.tensor(LABELS), top_k=3, depth=1)
    assert neighbours.shape[1] == 3  # largest R = 2 < top_k
    assert neighbours.numpy().tolist() == naive_neighbours(3).tolist()
    assert (
        rx.neighbours_for_metrics(embeddings(), torch.tensor(LABELS), top_k=3).shape[1] == 7
    )  # 4R = 8 > N - 1
    scores = rx.per_query_map_at_r(neighbours, torch.tensor(LABELS))
    assert scores.tolist() == pytest.approx(naive_map_at_r(naive_neighbours(3)))
    # hand-worked: query 0 (angle 0, class 0): neighbours 1 (class 0), 2 (class 1); R = 2 -> (1/1)/2
    assert scores[0] == pytest.approx(0.5)


def test_grid_frames_are_green_for_the_query_class_and_red_otherwise(tmp_path):
    neighbours = naive_neighbours(4)
    queries = [0, 3, 5]
    path = rx.draw_grid(
        lambda i: Image.new("RGB", (30, 30), (128, 128, 128)),
        queries,
        neighbours[queries],
        LABELS,
        tmp_path / "grid.png",
    )
    image = np.asarray(Image.open(path).convert("RGB"))
    for row, query in enumerate(queries):
        x, y = rx.cell_origin(row, 0)
        assert tuple(image[y + 1, x + 1]) == rx.QUERY
        for column, neighbour in enumerate(neighbours[query], start=1):
            x, y = rx.cell_origin(row, column)
            expected = (0, 170, 0) if LABELS[neighbour] == LABELS[query] else (220, 0, 0)
            assert tuple(image[y + 1, x + 1]) == expected, (query, neighbour)
            assert tuple(image[y + rx.CELL // 2, x + rx.CELL // 2]) == (128, 128, 128)  # the image inside
    # query 5 (200 deg, class 2): nearest is 6 (215 deg, class 2) -> green, then 4 (100) red
    x, y = rx.cell_origin(2, 1)
    assert tuple(image[y + 1, x + 1]) == rx.GREEN


def test_query_choice_is_worst_first_then_evenly_spaced_and_skips_nan():
    scores = np.array([0.9, 0.1, np.nan, 0.5, 0.1, 0.7, 0.3, 1.0])
    assert rx.choose_queries(scores, 4) == [1, 4, 0, 7]  # worst two (tie -> lower index), then spaced
    assert rx.choose_queries(scores, 1) == [1]
    assert rx.choose_queries(scores, 50) == [1, 4, 6, 3, 0, 5, 7]  # all 7 valid: 4 worst, then the rest


def test_per_class_map_at_r_and_precision_recall_curve():
    scores = np.array([0.5, 1.0, np.nan, 0.25, 0.75, 0.0, 1.0, 0.0])
    per_class = rx.per_class_map_at_r(scores, LABELS)
    assert per_class == pytest.approx({0: 0.5, 1: 0.5, 2: 0.5})
    neighbours = torch.tensor(naive_neighbours(3))
    recall, precision = rx.precision_recall_curve(neighbours, torch.tensor(LABELS))
    for i in range(3):
        p, r = [], []
        for q, row in enumerate(naive_neighbours(3)):
            found = sum(LABELS[j] == LABELS[q] for j in row[: i + 1])
            p.append(found / (i + 1))
            r.append(found / ((LABELS[q] == LABELS).sum() - 1))
        assert precision[i] == pytest.approx(sum(p) / len(p))
        assert recall[i] == pytest.approx(sum(r) / len(r))
    assert not any(math.isnan(v) for v in recall)


def test_best_fold_is_the_highest_validation_score_first_on_ties():
    from dmlbench.records.retrieval_run import best_scheme

    assert best_scheme({"f0": {"best_score": 0.5}, "f1": {"best_score": 0.7}}, ["f0", "f1"]) == "f1"
    assert best_scheme({"f0": {"best_score": 0.5}, "f1": {"best_score": 0.5}}, ["f0", "f1"]) == "f0"
    assert best_scheme({"f0": {"best_score": None}}, ["f0", "f1"]) == "f0"
