"""retrieval_metrics against hand-worked numbers and a naive per-query loop."""

import numpy as np
import pytest
import torch
from naive_retrieval import (
    dot_score,
    l2_normalised,
    naive_metrics,
    negative_hamming,
    negative_squared_distance,
    neighbour_order,
)

from dmlbench.errors import ConfigError, DatasetError
from dmlbench.evaluation import RetrievalSettings, exact_knn, retrieval_metrics


def assert_close(got: dict, expected: dict, tolerance: float = 1e-9) -> None:
    assert set(expected) <= set(got)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=tolerance), name


def clustered_data(
    seed: int, num_samples: int = 120, num_classes: int = 17, dims: int = 8, spread: float = 1.5
):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_samples)
    centres = rng.standard_normal((num_classes, dims))
    embeddings = centres[labels] + spread * rng.standard_normal((num_samples, dims))
    return embeddings.astype(np.float32), labels


def test_hand_worked_example_with_singleton():
    # Points on a line, Euclidean ranking. Worked out by hand (see the comments):
    # q0 (A): 1A 2B 3A 4B -> P@1 1, RP 1/2, MAP@R (1/2)(1)       = 0.5
    # q1 (A): 0A 2B 3A 4B -> 1, 1/2, 0.5
    # q2 (B): 3A 1A 0A 4B -> 0, 0, 0
    # q3 (A): 2B 1A 0A 4B -> 0, 1/2, (1/2)(P@2 = 1/2)             = 0.25
    # q4 (B): 3A 2B ...   -> 0, 0, 0;  Recall@2: q0 q1 q3 q4 yes, q2 no
    # q5 (C) is alone in its class: left out of every mean.
    embeddings = np.array([[0.0], [1.0], [3.0], [4.0], [10.0], [20.0]])
    labels = np.array(["A", "A", "B", "A", "B", "C"])
    got = retrieval_metrics(
        embeddings,
        labels,
        RetrievalSettings(normalize=False, ranking="euclidean", recall_at=(1, 2), device="cpu"),
    )
    assert_close(
        got,
        {
            "precision_at_1": 0.4,
            "r_precision": 0.3,
            "mean_average_precision_at_r": 0.25,
            "recall_at_1": 0.4,
            "recall_at_2": 0.8,
        },
        1e-12,
    )


def test_hand_worked_tie_is_broken_by_lowest_reference_index():
    # Query 0 = (1, 0) scores 1 with both reference 1 (class B) and reference 2 (class A).
    # The tie rule puts reference 1 first, so query 0 misses at rank 1.
    embeddings = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = np.array([0, 1, 0, 1])
    _, indices = exact_knn(torch.tensor(embeddings, dtype=torch.float32), k=3)
    assert indices[0].tolist() == [1, 2, 3]
    assert indices[2].tolist() == [0, 1, 3]
    got = retrieval_metrics(embeddings, labels, RetrievalSettings(normalize=False, device="cpu"))
    # q0: 1B 2A -> P@1 0; q1: 0A 2A 3B -> R=1: P@1 0; q2: 0A -> 1; q3: 0A 1B -> R=1: 0
    assert got["precision_at_1"] == pytest.approx(0.25)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_compared_to_self_matches_naive_loop(seed, chunk_size):
    embeddings, labels = clustered_data(seed)
    expected = naive_metrics(
        l2_normalised(embeddings),
        labels,
        l2_normalised(embeddings),
        labels,
        exclude_self=True,
        recall_at=(1, 2, 4, 8),
    )
    got = retrieval_metrics(
        embeddings, labels, RetrievalSettings(recall_at=(1, 2, 4, 8), chunk_size=chunk_size, device="cpu")
    )
    assert_close(got, expected)


def test_reference_blocks_give_the_same_result():
    embeddings, labels = clustered_data(5)
    whole = retrieval_metrics(embeddings, labels, RetrievalSettings(recall_at=(1, 3), device="cpu"))
    blocked = retrieval_metrics(
        embeddings,
        labels,
        RetrievalSettings(recall_at=(1, 3), chunk_size=9, reference_chunk_size=13, device="cpu"),
    )
    assert blocked == whole


def test_query_vs_gallery_matches_naive_loop_and_keeps_identical_items():
    gallery, gallery_labels = clustered_data(7, num_samples=90)
    queries, query_labels = clustered_data(8, num_samples=40)
    queries[:5] = gallery[:5]  # a query equal to a gallery item is not "self": it must be found
    query_labels[:5] = gallery_labels[:5]
    query_labels[5] = 999  # no gallery item of this class: left out
    expected = naive_metrics(
        l2_normalised(queries),
        query_labels,
        l2_normalised(gallery),
        gallery_labels,
        exclude_self=False,
        recall_at=(1, 10),
    )
    got = retrieval_metrics(
        gallery,
        gallery_labels,
        RetrievalSettings(recall_at=(1, 10), chunk_size=6, device="cpu"),
        query_embeddings=queries,
        query_labels=query_labels,
    )
    assert_close(got, expected)
    identical = retrieval_metrics(
        gallery,
        gallery_labels,
        RetrievalSettings(device="cpu"),
        query_embeddings=gallery[:5],
        query_labels=gallery_labels[:5],
    )
    assert identical["precision_at_1"] == 1.0


@pytest.mark.parametrize("chunk_size", [1, 5, 64])
def test_ties_follow_the_rule_on_integer_embeddings(chunk_size):
    # Integer embeddings with three values per dimension: many exactly equal scores.
    rng = np.random.default_rng(11)
    embeddings = rng.integers(-1, 2, size=(70, 3)).astype(np.float32)
    labels = rng.integers(0, 6, size=70)
    for ranking, score in (("dot", dot_score), ("euclidean", negative_squared_distance)):
        expected = naive_metrics(
            embeddings, labels, embeddings, labels, exclude_self=True, score=score, recall_at=(1, 5)
        )
        got = retrieval_metrics(
            embeddings,
            labels,
            RetrievalSettings(
                normalize=False,
                ranking=ranking,
                recall_at=(1, 5),
                chunk_size=chunk_size,
                reference_chunk_size=chunk_size + 3,
                device="cpu",
            ),
        )
        assert_close(got, expected)


def test_knn_indices_match_naive_order_with_ties():
    rng = np.random.default_rng(12)
    embeddings = rng.integers(0, 2, size=(40, 4)).astype(np.float32)
    _, indices = exact_knn(torch.from_numpy(embeddings), k=6, chunk_size=7)
    for i in range(40):
        assert indices[i].tolist() == neighbour_order(i, embeddings, embeddings, dot_score, True)[:6]


def test_binarized_codes_rank_by_hamming_distance():
    embeddings, labels = clustered_data(13, num_samples=80, dims=6)
    expected = naive_metrics(
        embeddings, labels, embeddings, labels, exclude_self=True, score=negative_hamming, recall_at=(1, 2, 4)
    )
    got = retrieval_metrics(
        embeddings, labels, RetrievalSettings(binarize=True, recall_at=(1, 2, 4), chunk_size=11, device="cpu")
    )
    assert_close(got, expected)


def test_torch_and_numpy_inputs_agree_and_labels_may_be_float():
    embeddings, labels = clustered_data(14)
    from_numpy = retrieval_metrics(embeddings, labels, RetrievalSettings(device="cpu"))
    from_torch = retrieval_metrics(
        torch.from_numpy(embeddings), torch.from_numpy(labels).float(), RetrievalSettings(device="cpu")
    )
    assert from_numpy == from_torch


def test_default_k_is_large_enough_for_the_largest_class():
    # One class of 30 samples placed so that its members are the farthest neighbours of each other.
    rng = np.random.default_rng(15)
    big_class = rng.standard_normal((30, 5)).astype(np.float32) * 10
    small = rng.standard_normal((30, 5)).astype(np.float32)
    embeddings = np.concatenate([big_class, small])
    labels = np.array([0] * 30 + list(range(1, 16)) * 2)
    expected = naive_metrics(
        l2_normalised(embeddings), labels, l2_normalised(embeddings), labels, exclude_self=True
    )
    assert_close(retrieval_metrics(embeddings, labels, RetrievalSettings(device="cpu")), expected)


def test_k_smaller_than_needed_is_refused():
    embeddings, labels = clustered_data(16)
    largest_r = np.bincount(labels).max() - 1
    with pytest.raises(ConfigError, match="MAP@R"):
        retrieval_metrics(embeddings, labels, RetrievalSettings(k=int(largest_r) - 1, device="cpu"))
    with pytest.raises(ConfigError, match="recall_at"):
        retrieval_metrics(
            embeddings,
            labels,
            RetrievalSettings(k=int(largest_r), recall_at=(int(largest_r) + 5,), device="cpu"),
        )
    larger = retrieval_metrics(embeddings, labels, RetrievalSettings(k=int(largest_r) + 20, device="cpu"))
    assert larger == retrieval_metrics(embeddings, labels, RetrievalSettings(device="cpu"))


def test_recall_at_more_than_all_references_counts_every_query_with_a_match():
    embeddings, labels = clustered_data(17, num_samples=30)
    got = retrieval_metrics(embeddings, labels, RetrievalSettings(recall_at=(1000,), device="cpu"))
    assert got["recall_at_1000"] == 1.0


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"labels": np.zeros(5)}, DatasetError, "rows but labels"),
        ({"backend": "fiass"}, ConfigError, "backend"),
        ({"ranking": "cosine"}, ConfigError, "ranking"),
        ({"chunk_size": 0}, ConfigError, "chunk_size"),
        ({"recall_at": (0,)}, ConfigError, "recall_at"),
        ({"query_embeddings": np.zeros((3, 4))}, ConfigError, "together"),
    ],
)
def test_bad_arguments_raise_one_line_errors(kwargs, error, message):
    embeddings, labels = clustered_data(18, num_samples=20, dims=4)
    data = {"embeddings": embeddings, "labels": labels}
    options = {"device": "cpu"}
    for key, value in kwargs.items():
        (data if key in {"labels", "query_embeddings"} else options)[key] = value
    with pytest.raises(error, match=message):
        retrieval_metrics(**data, settings=RetrievalSettings(**options))


def test_non_finite_embeddings_and_all_singletons_are_data_errors():
    embeddings, labels = clustered_data(19, num_samples=20, dims=4)
    broken = embeddings.copy()
    broken[3, 1] = np.nan
    with pytest.raises(DatasetError, match="row 3"):
        retrieval_metrics(broken, labels, RetrievalSettings(device="cpu"))
    with pytest.raises(DatasetError, match="single sample"):
        retrieval_metrics(embeddings, np.arange(20), RetrievalSettings(device="cpu"))


def test_string_item_ids_in_query_vs_gallery():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]], dtype=np.float32)
    queries = np.array([[0.9, 0.0], [0.1, 1.0]], dtype=np.float32)
    got = retrieval_metrics(
        gallery,
        ["id_1", "id_2", "id_1"],
        RetrievalSettings(device="cpu"),
        query_embeddings=queries,
        query_labels=["id_1", "id_2"],
    )
    assert got["precision_at_1"] == 1.0 and got["mean_average_precision_at_r"] == 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    embeddings, labels = clustered_data(20, num_samples=500, num_classes=40, dims=32)
    cpu = retrieval_metrics(embeddings, labels, RetrievalSettings(recall_at=(1, 4), device="cpu"))
    cuda = retrieval_metrics(embeddings, labels, RetrievalSettings(recall_at=(1, 4), device="cuda"))
    assert_close(cuda, cpu, 1e-9)


@pytest.mark.parametrize("block", [4, 16, 100])
def test_symmetric_blocks_give_the_naive_results(block):
    # The symmetric path scores each pair of blocks once and uses it both ways.
    rng = np.random.default_rng(21)
    tied = rng.integers(-1, 2, size=(50, 3)).astype(np.float32)
    tied_labels = rng.integers(0, 5, size=50)
    expected = naive_metrics(tied, tied_labels, tied, tied_labels, exclude_self=True, recall_at=(1, 3))
    for symmetric in (True, False):
        got = retrieval_metrics(
            tied,
            tied_labels,
            RetrievalSettings(
                normalize=False, recall_at=(1, 3), chunk_size=block, symmetric=symmetric, device="cpu"
            ),
        )
        assert_close(got, expected)


def test_symmetric_needs_compared_to_self():
    embeddings, labels = clustered_data(22, num_samples=20, dims=4)
    with pytest.raises(ConfigError, match="symmetric"):
        retrieval_metrics(
            embeddings,
            labels,
            RetrievalSettings(symmetric=True, device="cpu"),
            query_embeddings=embeddings,
            query_labels=labels,
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_follows_the_tie_rule():
    rng = np.random.default_rng(23)
    embeddings = rng.integers(-1, 2, size=(300, 3)).astype(np.float32)
    labels = rng.integers(0, 8, size=300)
    expected = naive_metrics(embeddings, labels, embeddings, labels, exclude_self=True, recall_at=(1, 7))
    for chunk_size in (13, None):
        got = retrieval_metrics(
            embeddings,
            labels,
            RetrievalSettings(normalize=False, recall_at=(1, 7), chunk_size=chunk_size, device="cuda"),
        )
        assert_close(got, expected)
    codes = retrieval_metrics(embeddings + 0.5, labels, RetrievalSettings(binarize=True, device="cuda"))
    assert_close(
        codes, retrieval_metrics(embeddings + 0.5, labels, RetrievalSettings(binarize=True, device="cpu"))
    )
