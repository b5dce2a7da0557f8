"""The retrieval examples from plain data: which folds are embedded (example_folds), and what
write_retrieval_examples reports, against a naive per-query MAP@R (cosine neighbours)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dmlbench.evaluation.ensemble import concatenate_normalized
from dmlbench.records.retrieval_run import PLOTS, ExampleFolds, example_folds, write_retrieval_examples

TRAINING = {"f0": {"best_score": 0.3}, "f1": {"best_score": 0.6}}


def test_example_folds_every_fold_on_a_shared_split_else_the_best_alone():
    shared = {"f0": {"test": np.arange(6)}, "f1": {"test": np.arange(6)}}
    chosen = example_folds(shared, TRAINING, "test")
    assert isinstance(chosen, ExampleFolds)
    assert (chosen.best_fold, chosen.schemes, chosen.indices.tolist()) == ("f1", ["f0", "f1"], list(range(6)))
    per_fold = {"f0": {"val": np.arange(3)}, "f1": {"val": np.arange(3, 6)}}
    chosen = example_folds(per_fold, TRAINING, "val")
    assert (chosen.best_fold, chosen.schemes, chosen.indices.tolist()) == ("f1", ["f1"], [3, 4, 5])
    query_gallery = {"f0": {"query": np.array([7, 2]), "gallery": np.array([5, 1, 9])}}
    chosen = example_folds(query_gallery, {}, "test")
    assert (chosen.schemes, chosen.indices.tolist(), chosen.gallery_start) == (["f0"], [7, 2, 5, 1, 9], 2)
    reason = example_folds(query_gallery, {}, "val")
    assert isinstance(reason, str) and "'val' does not exist" in reason and "query, gallery" in reason


def naive_map_at_r(embeddings: np.ndarray, labels: np.ndarray) -> list[float]:
    """Per query: neighbours by cosine similarity (ties: lower index first), self left out;
    MAP@R = (1/R) sum_{i<=R} P@i * rel_i with R = the number of other samples of its class."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    scores = []
    for q in range(len(labels)):
        others = [j for j in range(len(labels)) if j != q]
        order = sorted(others, key=lambda j: (-float(unit[q] @ unit[j]), j))
        r = sum(labels[j] == labels[q] for j in others)
        relevant = [labels[j] == labels[q] for j in order[:r]]
        scores.append(sum(sum(relevant[: i + 1]) / (i + 1) for i in range(r) if relevant[i]) / r)
    return scores


def test_write_retrieval_examples_reports_the_naive_scores(tmp_path):
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    rng = np.random.default_rng(4)
    best = (np.eye(3)[labels] + 0.7 * rng.standard_normal((9, 3))).astype(np.float32)
    other = (np.eye(3)[labels] + 0.7 * rng.standard_normal((9, 3))).astype(np.float32)
    concatenated = concatenate_normalized([torch.from_numpy(other), torch.from_numpy(best)])
    folds = ExampleFolds("test", "f1", ["f0", "f1"], np.arange(100, 109))
    loaded = []

    def load_image(index: int) -> Image.Image:
        loaded.append(index)
        return Image.new("RGB", (8, 8), (index, 0, 0))

    shown = write_retrieval_examples(
        folds,
        torch.from_numpy(labels),
        torch.from_numpy(best),
        concatenated,
        load_image,
        tmp_path,
        queries=4,
        top_k=2,
    )
    assert shown["split"] == "test" and shown["best_fold"] == "f1" and shown["top_k"] == 2
    assert [grid["name"] for grid in shown["grids"]] == ["best fold (f1)", "concatenated (2 folds)"]
    for grid, embeddings in zip(shown["grids"], (best, concatenated.numpy())):
        expected = naive_map_at_r(embeddings, labels)
        assert len(grid["queries"]) == 4
        assert grid["query_map_at_r"] == pytest.approx([expected[q] for q in grid["queries"]])
        worst_two = sorted(range(9), key=lambda q: (expected[q], q))[:2]  # half of the queries: the worst
        assert grid["queries"][:2] == worst_two
    expected = naive_map_at_r(best, labels)
    per_class = {c: float(np.mean([expected[q] for q in range(9) if labels[q] == c])) for c in (0, 1, 2)}
    worst = sorted(per_class, key=lambda c: (per_class[c], c))
    assert [(w["label"], pytest.approx(w["map_at_r"])) for w in shown["worst_classes"]] == [
        (c, per_class[c]) for c in worst
    ]
    assert set(loaded) <= set(range(100, 109)) and loaded  # images by data set index
    for name in PLOTS.values():
        assert (tmp_path / name).stat().st_size > 0


def test_write_retrieval_examples_of_one_fold_draws_no_concatenation(tmp_path):
    labels = torch.tensor([0, 0, 1, 1])
    embeddings = torch.tensor([[1.0, 0.1], [0.9, 0.0], [0.0, 1.0], [0.2, 1.0]])
    folds = ExampleFolds("val", "f0", ["f0"], np.arange(4))
    shown = write_retrieval_examples(
        folds, labels, embeddings, None, lambda i: Image.new("RGB", (4, 4)), tmp_path, 2, 1
    )
    assert [grid["name"] for grid in shown["grids"]] == ["best fold (f0)"]
    assert [w["map_at_r"] for w in shown["worst_classes"]] == [1.0, 1.0]  # each class: its pair first
    assert not (tmp_path / PLOTS["concatenated"]).exists()


def naive_query_gallery_map_at_r(
    queries: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray
) -> list[float]:
    """Per query: the gallery ranked by cosine similarity (ties: lower index first); MAP@R with
    R = the gallery samples of its class."""
    unit_q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    unit_g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    scores = []
    for q in range(len(queries)):
        order = sorted(range(len(gallery)), key=lambda g: (-float(unit_q[q] @ unit_g[g]), g))
        r = int((gallery_labels == query_labels[q]).sum())
        relevant = [gallery_labels[g] == query_labels[q] for g in order[:r]]
        scores.append(sum(sum(relevant[: i + 1]) / (i + 1) for i in range(r) if relevant[i]) / r)
    return scores


def test_query_gallery_examples_rank_queries_against_the_gallery_alone(tmp_path):
    """In-Shop: queries never find other queries; MAP@R and the grid's neighbours come from the
    gallery, against a naive loop."""
    rng = np.random.default_rng(7)
    query_labels, gallery_labels = np.array([0, 1, 2, 0, 1]), np.array([0, 0, 1, 1, 1, 2, 2])
    labels = np.concatenate([query_labels, gallery_labels])
    embeddings = (np.eye(3)[labels] + 0.8 * rng.standard_normal((12, 3))).astype(np.float32)
    embeddings[1] = embeddings[4]  # two identical queries: each other's best match were they candidates
    dataset_indices = np.arange(200, 212)
    folds = ExampleFolds("test", "f0", ["f0"], dataset_indices, gallery_start=5)
    loaded = []

    def load_image(index: int) -> Image.Image:
        loaded.append(index)
        return Image.new("RGB", (8, 8))

    shown = write_retrieval_examples(
        folds, torch.from_numpy(labels), torch.from_numpy(embeddings), None, load_image, tmp_path, 3, 2
    )
    expected = naive_query_gallery_map_at_r(embeddings[:5], query_labels, embeddings[5:], gallery_labels)
    (grid,) = shown["grids"]
    assert all(0 <= q < 5 for q in grid["queries"]) and len(grid["queries"]) == 3
    assert grid["query_map_at_r"] == pytest.approx([expected[q] for q in grid["queries"]])
    per_class = {
        c: float(np.mean([expected[q] for q in range(5) if query_labels[q] == c])) for c in (0, 1, 2)
    }
    assert {w["label"]: w["map_at_r"] for w in shown["worst_classes"]} == pytest.approx(per_class)
    queries_drawn = {int(dataset_indices[q]) for q in grid["queries"]}
    neighbours_drawn = set(loaded) - queries_drawn
    assert neighbours_drawn and neighbours_drawn <= set(range(205, 212))  # gallery images only
    assert "neighbours from the 7 gallery images" in shown["note"]
