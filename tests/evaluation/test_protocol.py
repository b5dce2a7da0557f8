"""The test protocol (embed, score, test) on a small fake environment: linear models on fixed
vectors, checked against the naive per-query metrics of docs/protocol.md and hand-made means."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from naive_retrieval import dot_score, l2_normalised, naive_metrics, negative_hamming
from torch import nn
from torch.utils.data import TensorDataset

from dmlbench.data.folds import FoldData
from dmlbench.evaluation import protocol
from dmlbench.evaluation.protocol import EvaluationSettings

CPU = torch.device("cpu")
METRICS = ("precision_at_1", "r_precision", "mean_average_precision_at_r")


def evaluation_settings(binarize: bool = False) -> EvaluationSettings:
    return EvaluationSettings(
        batch_size=5,
        num_workers=0,
        normalize=True,
        recall_at=(),
        chunk_size=None,
        binarize=binarize,
        check_untrained_accuracy=True,
    )


def data(seed: int = 0, n: int = 24, dims: int = 4, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.standard_normal((classes, dims))
    return (centres[labels] + 0.9 * rng.standard_normal((n, dims))).astype(np.float32), labels


def linear(weight: np.ndarray) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
    return layer


def naive(embeddings: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    normalised = l2_normalised(embeddings)
    return naive_metrics(normalised, labels, normalised, labels, exclude_self=True, score=dot_score)


def test_embed_runs_the_trunk_then_the_embedder_in_data_set_order():
    features, labels = data()
    weight = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    dataset = TensorDataset(torch.from_numpy(features), torch.from_numpy(labels))
    settings = evaluation_settings()
    embeddings, got_labels = protocol.embed(settings, CPU, nn.Identity(), linear(weight), dataset, "t")
    np.testing.assert_allclose(embeddings.numpy(), features @ weight.T, rtol=1e-5, atol=1e-6)
    assert got_labels.tolist() == labels.tolist()
    trunk_only, _ = protocol.embed(settings, CPU, nn.Identity(), None, dataset, "t")
    np.testing.assert_array_equal(trunk_only.numpy(), features)


def test_score_is_the_naive_metrics_and_binary_codes_rank_by_hamming():
    features, labels = data(2)
    got = protocol.score(
        evaluation_settings(binarize=True), CPU, torch.from_numpy(features), torch.from_numpy(labels)
    )
    expected = naive(features, labels)
    binary = naive_metrics(features, labels, features, labels, exclude_self=True, score=negative_hamming)
    for name in METRICS:
        assert got[name] == pytest.approx(expected[name], abs=1e-9)
        assert got[f"binary_{name}"] == pytest.approx(binary[name], abs=1e-9)


def test_score_query_against_gallery():
    features, labels = data(3)
    queries, gallery = features[:8], features[8:]
    got = protocol.score(
        evaluation_settings(),
        CPU,
        torch.from_numpy(gallery),
        torch.from_numpy(labels[8:]),
        query_embeddings=torch.from_numpy(queries),
        query_labels=torch.from_numpy(labels[:8]),
    )
    expected = naive_metrics(
        l2_normalised(queries), labels[:8], l2_normalised(gallery), labels[8:], exclude_self=False
    )
    for name in METRICS:
        assert got[name] == pytest.approx(expected[name], abs=1e-9)


class FakeStore:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add_accuracies(self, scheme, split, status, mode, epoch, metrics) -> None:
        self.rows.append((scheme, split, status, mode, epoch, dict(metrics)))


class FakeTestEnvironment:
    """Two folds testing the same 24 samples; the trunk is the identity on 4-d vectors, the
    embedder a 4 -> 3 linear map: an initial one per fold, and a "trained" one from best.pt."""

    def __init__(self) -> None:
        self.features, self.labels = data()
        rng = np.random.default_rng(7)
        self.initial = {s: rng.standard_normal((3, 4)).astype(np.float32) for s in ("f0", "f1")}
        self.trained = {s: rng.standard_normal((3, 4)).astype(np.float32) for s in ("f0", "f1")}
        everything = np.arange(len(self.labels))
        self.folds = [FoldData(s, {"test": everything}, {}) for s in ("f0", "f1")]
        self.settings: dict = {}
        self.device = CPU
        self.evaluation = evaluation_settings()
        self.store = FakeStore()

    def build_models(self, fold):
        return {"trunk": nn.Identity(), "embedder": linear(self.initial[fold.scheme])}

    def load_best_models(self, fold):
        embedder = linear(self.trained[fold.scheme])
        return {"trunk": nn.Identity(), "embedder": embedder}, {"epoch": 5, "models": {}}

    def plugin_context(self, fold, models):
        return {}

    def subset_of(self, indices, trunk):
        return TensorDataset(torch.from_numpy(self.features[indices]), torch.from_numpy(self.labels[indices]))


def test_test_scores_every_fold_and_status_and_returns_the_trained_embeddings():
    env = FakeTestEnvironment()
    outcome = protocol.test(env, ["test"], env.evaluation.statuses(), ensemble=True)
    x, labels = env.features, env.labels
    fold_embeddings = {
        "untrained_trunk": {s: x for s in ("f0", "f1")},
        "untrained_trunk_and_embedder": {s: x @ env.initial[s].T for s in ("f0", "f1")},
        "trained": {s: x @ env.trained[s].T for s in ("f0", "f1")},
    }
    for status, per_fold in fold_embeddings.items():
        entry = outcome.summary["test"][status]
        naive_folds = {s: naive(e, labels) for s, e in per_fold.items()}
        concatenated = np.concatenate([l2_normalised(e) for e in per_fold.values()], axis=1)
        for name in METRICS:
            values = [naive_folds[s][name] for s in ("f0", "f1")]
            assert entry["separated"]["mean"][name] == pytest.approx(np.mean(values), abs=1e-9)
            sem = abs(values[0] - values[1]) / 2  # sample std / sqrt(2) for two values
            assert entry["separated"]["sem"][name] == pytest.approx(sem, abs=1e-9)
            assert entry["concatenated"][name] == pytest.approx(naive(concatenated, labels)[name], abs=1e-9)
    assert set(outcome.trained_embeddings) == {("test", "f0"), ("test", "f1")}
    for scheme in ("f0", "f1"):
        embeddings, got_labels = outcome.trained_embeddings[("test", scheme)]
        np.testing.assert_allclose(embeddings.numpy(), x @ env.trained[scheme].T, rtol=1e-5, atol=1e-6)
        assert got_labels.tolist() == labels.tolist()
    # every score went to the store: 2 folds x 3 statuses, then per status the ensemble rows
    fold_rows = [row for row in env.store.rows if row[3] == "fold"]
    assert sorted((r[0], r[2], r[4]) for r in fold_rows) == sorted(
        (s, status, 5 if status == "trained" else 0) for s in ("f0", "f1") for status in fold_embeddings
    )
    modes = sorted(row[3] for row in env.store.rows if row[0] == "ensemble")
    assert modes == sorted(["concatenated", "separated", "separated_sem"] * 3)
    assert all(not math.isnan(v) for row in env.store.rows for v in row[5].values())


def test_test_without_ensemble_and_query_gallery_splits_keeps_queries_then_gallery():
    env = FakeTestEnvironment()
    n = len(env.labels)
    half = n // 2  # both halves hold every class (label = index mod 4)
    env.folds = [FoldData("f0", {"query": np.arange(half), "gallery": np.arange(half, n)}, {})]
    outcome = protocol.test(env, ["test"], ["trained"], ensemble=False)
    x, labels = env.features @ env.trained["f0"].T, env.labels
    expected = naive_metrics(
        l2_normalised(x[:half]), labels[:half], l2_normalised(x[half:]), labels[half:], exclude_self=False
    )
    entry = outcome.summary["test"]["trained"]
    assert "concatenated" not in entry
    assert entry["separated"]["per_fold"]["f0"]["r_precision"] == pytest.approx(expected["r_precision"])
    # the retrieval examples get the split as one set: the queries, then the gallery
    ((key, (kept, kept_labels)),) = outcome.trained_embeddings.items()
    assert key == ("test", "f0")
    assert np.allclose(np.asarray(kept, dtype=np.float64), np.asarray(x, dtype=np.float64), atol=1e-5)
    assert np.asarray(kept_labels).tolist() == np.asarray(labels).tolist()
