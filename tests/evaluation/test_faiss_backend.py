"""The optional faiss backend gives the torch path's neighbours, ties included."""

import builtins

import numpy as np
import pytest
from naive_retrieval import l2_normalised, naive_metrics, negative_hamming

from dmlbench.errors import ConfigError
from dmlbench.evaluation import RetrievalSettings, retrieval_metrics


def test_missing_faiss_is_a_config_error(monkeypatch):
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("no faiss here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(ConfigError, match="pip install faiss-cpu"):
        retrieval_metrics(
            np.eye(4, dtype=np.float32), [0, 0, 1, 1], RetrievalSettings(backend="faiss", device="cpu")
        )


faiss = pytest.importorskip("faiss")


def test_faiss_matches_naive_loop_on_random_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 12, size=150)
    embeddings = (rng.standard_normal((12, 10))[labels] + rng.standard_normal((150, 10))).astype(np.float32)
    expected = naive_metrics(
        l2_normalised(embeddings),
        labels,
        l2_normalised(embeddings),
        labels,
        exclude_self=True,
        recall_at=(1, 4),
    )
    got = retrieval_metrics(
        embeddings, labels, RetrievalSettings(backend="faiss", recall_at=(1, 4), chunk_size=40, device="cpu")
    )
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


@pytest.mark.parametrize("ranking", ["dot", "euclidean"])
def test_faiss_obeys_the_tie_rule(ranking):
    rng = np.random.default_rng(1)
    embeddings = rng.integers(-1, 2, size=(90, 3)).astype(np.float32)  # many exact ties and duplicates
    labels = rng.integers(0, 5, size=90)
    torch_result = retrieval_metrics(
        embeddings,
        labels,
        RetrievalSettings(normalize=False, ranking=ranking, recall_at=(1, 3), device="cpu"),
    )
    faiss_result = retrieval_metrics(
        embeddings,
        labels,
        RetrievalSettings(
            normalize=False, ranking=ranking, recall_at=(1, 3), backend="faiss", chunk_size=17, device="cpu"
        ),
    )
    assert faiss_result == pytest.approx(torch_result, abs=1e-12)


def test_faiss_binarized_and_query_vs_gallery():
    rng = np.random.default_rng(2)
    gallery = rng.standard_normal((80, 6)).astype(np.float32)
    gallery_labels = rng.integers(0, 6, size=80)
    queries = rng.standard_normal((30, 6)).astype(np.float32)
    query_labels = rng.integers(0, 6, size=30)
    expected = naive_metrics(
        queries, query_labels, gallery, gallery_labels, exclude_self=False, score=negative_hamming
    )
    got = retrieval_metrics(
        gallery,
        gallery_labels,
        RetrievalSettings(binarize=True, backend="faiss", device="cpu"),
        query_embeddings=queries,
        query_labels=query_labels,
    )
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
