"""Same numbers as pytorch-metric-learning's AccuracyCalculator with k="max_bin_count".

PML 2.9 defaults to faiss (FaissKNN) and needs it installed; without faiss we give it its own
torch k-NN (CustomKNN with cosine similarity). Embeddings are random floats (no exact ties,
where PML's order is unspecified) and L2-normalised so that both rank the same way.
"""

import numpy as np
import pytest
import torch

pytest.importorskip("pytorch_metric_learning")
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN

from dmlbench.evaluation import RetrievalSettings, retrieval_metrics

METRICS = ("precision_at_1", "r_precision", "mean_average_precision_at_r")


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def pml_calculators():
    calculators = [
        AccuracyCalculator(
            include=METRICS,
            k="max_bin_count",
            device=torch.device("cpu"),
            knn_func=CustomKNN(CosineSimilarity()),
        )
    ]
    if faiss_available():
        calculators.append(AccuracyCalculator(include=METRICS, k="max_bin_count", device=torch.device("cpu")))
    return calculators


def clustered(seed, num_samples, num_classes, dims=16):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_samples)
    embeddings = rng.standard_normal((num_classes, dims))[labels] + 1.2 * rng.standard_normal(
        (num_samples, dims)
    )
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings.astype(np.float32), labels


@pytest.mark.parametrize("seed", [0, 1])
def test_compared_to_self_matches_pml(seed):
    embeddings, labels = clustered(seed, 400, 60)
    labels[:3] = [1000, 1001, 1002]  # singleton classes: both leave them out
    ours = retrieval_metrics(embeddings, labels, RetrievalSettings(chunk_size=37, device="cpu"))
    for calculator in pml_calculators():
        theirs = calculator.get_accuracy(embeddings, labels)
        for name in METRICS:
            assert ours[name] == pytest.approx(theirs[name], abs=1e-6), name


def test_query_vs_gallery_matches_pml():
    gallery, gallery_labels = clustered(2, 300, 40)
    queries, query_labels = clustered(3, 150, 40)
    query_labels[:4] = 555  # not in the gallery
    ours = retrieval_metrics(
        gallery,
        gallery_labels,
        RetrievalSettings(chunk_size=50, device="cpu"),
        query_embeddings=queries,
        query_labels=query_labels,
    )
    for calculator in pml_calculators():
        theirs = calculator.get_accuracy(
            queries, query_labels, gallery, gallery_labels, ref_includes_query=False
        )
        for name in METRICS:
            assert ours[name] == pytest.approx(theirs[name], abs=1e-6), name
