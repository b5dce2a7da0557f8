"""Binarised evaluation (codes 1[x > 0] ranked by Hamming distance) on a hand-worked case."""

from __future__ import annotations

import pytest
import torch

from dmlbench.evaluation import RetrievalSettings, retrieval_metrics

#: Two classes of two samples. Codes 1[x > 0]: a0 110, a1 100, b0 110, b1 011.
EMBEDDINGS = torch.tensor(
    [
        [0.9, 0.1, -0.2],  # a0
        [0.8, -0.1, -0.3],  # a1
        [0.7, 0.2, -0.1],  # b0
        [-0.5, 0.6, 0.4],  # b1
    ]
)
LABELS = torch.tensor([0, 0, 1, 1])


def test_binary_codes_are_ranked_by_hamming_distance() -> None:
    # Hamming distances:    a0 a1 b0 b1
    #                   a0   -  1  0  2
    #                   a1   1  -  1  3
    #                   b0   0  1  -  2
    #                   b1   2  3  2  -
    # Nearest (ties -> lower index): a0 -> b0 (miss), a1 -> a0 (a0/b0 tie at 1; hit),
    # b0 -> a0 (miss), b1 -> a0 (a0/b0 tie at 2; miss): P@1 = 1/4. Every class has R = 1, so
    # R-Precision = MAP@R = P@1. Two nearest: a0 {b0, a1} hit, a1 {a0, b0} hit, b0 {a0, a1} miss,
    # b1 {a0, b0} hit: Recall@2 = 3/4.
    metrics = retrieval_metrics(
        EMBEDDINGS, LABELS, RetrievalSettings(binarize=True, recall_at=(1, 2), device="cpu")
    )
    assert metrics["precision_at_1"] == pytest.approx(0.25)
    assert metrics["r_precision"] == pytest.approx(0.25)
    assert metrics["mean_average_precision_at_r"] == pytest.approx(0.25)
    assert metrics["recall_at_1"] == pytest.approx(0.25)
    assert metrics["recall_at_2"] == pytest.approx(0.75)


def test_raw_features_rank_by_cosine_and_differ_here() -> None:
    # Cosines: a0-a1 0.965, a0-b0 0.983, a1-b0 0.902, b0-b1 -0.419, a0-b1 -0.578, a1-b1 -0.768.
    # Nearest: a0 -> b0 (miss), a1 -> a0 (hit), b0 -> a0 (miss), b1 -> b0 (hit): P@1 = 1/2.
    metrics = retrieval_metrics(EMBEDDINGS, LABELS, RetrievalSettings(recall_at=(1,), device="cpu"))
    assert metrics["precision_at_1"] == pytest.approx(0.5)
    assert metrics["recall_at_1"] == pytest.approx(0.5)
