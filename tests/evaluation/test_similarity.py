"""Custom pairwise similarities: all pairs in blocks, or re-ranking plain k-NN candidates."""

import numpy as np
import pytest
import torch
from naive_retrieval import dot_score, l2_normalised, naive_metrics, neighbour_order

from dmlbench.errors import ConfigError
from dmlbench.evaluation import RetrievalSettings, retrieval_metrics


def negative_l1(queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    return -(queries[:, None, :] - references[None, :, :]).abs().sum(dim=2)


class NegativeL1WithPaired:
    """Matrix form plus the optional paired form used by re-ranking."""

    def __init__(self):
        self.paired_calls = 0

    def __call__(self, queries, references):
        return negative_l1(queries, references)

    def paired(self, query_rows, reference_rows):
        self.paired_calls += 1
        return -(query_rows - reference_rows).abs().sum(dim=1)


def naive_l1(query, reference):
    return -float(np.abs(query.astype(np.float64) - reference.astype(np.float64)).sum())


def data(seed=0, num_samples=60, dims=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 9, size=num_samples)
    embeddings = rng.standard_normal((9, dims))[labels] + rng.standard_normal((num_samples, dims))
    return torch.tensor(embeddings, dtype=torch.float32), labels


def test_all_pairs_in_blocks_matches_naive_loop():
    embeddings, labels = data()
    expected = naive_metrics(
        embeddings.numpy(),
        labels,
        embeddings.numpy(),
        labels,
        exclude_self=True,
        score=naive_l1,
        recall_at=(1, 4),
    )
    got = retrieval_metrics(
        embeddings,
        labels,
        RetrievalSettings(
            similarity=negative_l1, recall_at=(1, 4), chunk_size=8, reference_chunk_size=11, device="cpu"
        ),
    )
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


def test_similarity_receives_per_sample_structures():
    embeddings, labels = data(1)
    weights = torch.linspace(0.5, 2.0, len(labels))

    def weighted(query_block, reference_block):  # dict in, [q, r] out
        return negative_l1(query_block["x"], reference_block["x"]) * reference_block["w"][None, :]

    numpy_x, numpy_w = embeddings.numpy(), weights.numpy()
    orders = [
        sorted(
            (j for j in range(len(labels)) if j != i),
            key=lambda j: (-naive_l1(numpy_x[i], numpy_x[j]) * numpy_w[j], j),
        )
        for i in range(len(labels))
    ]
    expected = naive_metrics(None, labels, None, labels, exclude_self=True, orders=orders)
    got = retrieval_metrics(
        {"x": embeddings, "w": weights},
        labels,
        RetrievalSettings(similarity=weighted, chunk_size=7, reference_chunk_size=16, device="cpu"),
    )
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


@pytest.mark.parametrize("with_paired", [True, False])
def test_rerank_of_a_candidate_list(with_paired):
    embeddings, labels = data(2)
    rerank_k = 15
    cosine = l2_normalised(embeddings.numpy())
    raw = embeddings.numpy()
    orders = []
    for i in range(len(labels)):
        candidates = neighbour_order(i, cosine, cosine, dot_score, True)[:rerank_k]
        orders.append(sorted(candidates, key=lambda j: (-naive_l1(raw[i], raw[j]), j)))
    expected = naive_metrics(None, labels, None, labels, exclude_self=True, orders=orders)
    similarity = NegativeL1WithPaired() if with_paired else negative_l1
    got = retrieval_metrics(
        embeddings,
        labels,
        RetrievalSettings(similarity=similarity, rerank_k=rerank_k, chunk_size=9, device="cpu"),
    )
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
    if with_paired:
        assert similarity.paired_calls > 0


def test_rerank_of_every_candidate_equals_scoring_all_pairs():
    embeddings, labels = data(3)
    all_pairs = retrieval_metrics(embeddings, labels, RetrievalSettings(similarity=negative_l1, device="cpu"))
    reranked = retrieval_metrics(
        embeddings,
        labels,
        RetrievalSettings(similarity=NegativeL1WithPaired(), rerank_k=len(labels), device="cpu"),
    )
    assert reranked == pytest.approx(all_pairs, abs=1e-12)


def test_query_vs_gallery_with_similarity():
    gallery, gallery_labels = data(4)
    queries, query_labels = data(5, num_samples=20)
    expected = naive_metrics(
        queries.numpy(), query_labels, gallery.numpy(), gallery_labels, exclude_self=False, score=naive_l1
    )
    got = retrieval_metrics(
        gallery,
        gallery_labels,
        RetrievalSettings(similarity=negative_l1, chunk_size=6, reference_chunk_size=25, device="cpu"),
        query_embeddings=queries,
        query_labels=query_labels,
    )
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


def test_broken_similarities_are_reported():
    embeddings, labels = data(6)
    with pytest.raises(ConfigError, match="shape"):
        retrieval_metrics(
            embeddings, labels, RetrievalSettings(similarity=lambda q, r: q @ r.T[:, :1], device="cpu")
        )
    with pytest.raises(ConfigError, match="NaN"):
        retrieval_metrics(
            embeddings,
            labels,
            RetrievalSettings(similarity=lambda q, r: (q @ r.T) * float("nan"), device="cpu"),
        )
    with pytest.raises(ConfigError, match="rerank_k"):
        retrieval_metrics(
            embeddings, labels, RetrievalSettings(similarity=negative_l1, rerank_k=1, device="cpu")
        )
    with pytest.raises(ConfigError, match="binarize"):
        retrieval_metrics(
            embeddings, labels, RetrievalSettings(similarity=negative_l1, binarize=True, device="cpu")
        )
