"""k-means (Lloyd, random start) and the NMI/AMI it feeds."""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from dmlbench.evaluation import RetrievalSettings, kmeans, retrieval_metrics


def blobs(seed, num_classes, per_class, dims=4, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_classes, dims)) * 10
    labels = np.repeat(np.arange(num_classes), per_class)
    return (centres[labels] + spread * rng.standard_normal((len(labels), dims))).astype(np.float32), labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_ends_at_a_lloyd_fixed_point(seed):
    # Independent check with numpy: every point is nearest to the mean of its own cluster.
    embeddings, _ = blobs(seed, num_classes=5, per_class=30, spread=3.0)
    assignment = kmeans(torch.from_numpy(embeddings), 7, seed=seed, iterations=100, chunk_size=13).numpy()
    used = np.unique(assignment)
    means = np.stack([embeddings[assignment == c].astype(np.float64).mean(axis=0) for c in used])
    distances = ((embeddings[:, None, :].astype(np.float64) - means[None]) ** 2).sum(axis=2)
    assert np.array_equal(used[distances.argmin(axis=1)], assignment)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_two_far_apart_blobs_are_found(seed):
    embeddings, labels = blobs(seed + 10, num_classes=2, per_class=25)
    got = retrieval_metrics(
        embeddings,
        labels,
        RetrievalSettings(nmi=True, ami=True, normalize=False, device="cpu", kmeans_seed=seed),
    )
    assert got["nmi"] == pytest.approx(1.0) and got["ami"] == pytest.approx(1.0)


def test_nmi_ami_are_scikit_learn_scores_of_the_kmeans_clusters():
    embeddings, labels = blobs(4, num_classes=4, per_class=10, spread=8.0)  # overlapping: imperfect clusters
    got = retrieval_metrics(
        embeddings,
        labels,
        RetrievalSettings(nmi=True, ami=True, normalize=False, device="cpu", kmeans_seed=3),
    )
    assignment = kmeans(torch.from_numpy(embeddings), 4, seed=3).numpy()
    assert got["nmi"] == pytest.approx(normalized_mutual_info_score(labels, assignment))
    assert got["ami"] == pytest.approx(adjusted_mutual_info_score(labels, assignment))
    assert got["nmi"] < 1.0
