"""SDM's soft worst case over views, against a direct computation pair by pair and view by view."""

from __future__ import annotations

import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from sdm_helpers import cosine, euclidean, soft_extreme

from dmlbench.errors import ConfigError
from dmlbench.plugins.sdm import SoftWorstCaseDistance, soft_worst_case
from dmlbench.training.plugins import LossInputs, bound_loss_inputs


def random_views(num_views=5, n=6, dim=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    views = torch.randn(num_views, n, dim, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1, 2])[:n]
    return views, labels


def aggregated(distance, views, labels):
    inputs = LossInputs(embeddings=views[-1], labels=labels).with_views(views)
    with bound_loss_inputs(inputs):
        return distance(inputs.embeddings)


@pytest.mark.parametrize("alpha", [0.5, 3.0, 32.0])
def test_distance_matches_direct_computation_over_views(alpha):
    views, labels = random_views()
    result = aggregated(SoftWorstCaseDistance(LpDistance(), alpha=alpha), views, labels)
    rows = views.tolist()
    for i in range(len(labels)):
        for j in range(len(labels)):
            per_view = [euclidean(view[i], view[j]) for view in rows]
            positive = bool(labels[i] == labels[j])
            expected = soft_extreme(per_view, alpha, maximum=positive)  # farthest positive, closest negative
            assert result[i, j].item() == pytest.approx(expected, abs=1e-9)


def test_similarity_direction_is_flipped():
    views, labels = random_views(seed=1)
    alpha = 4.0
    result = aggregated(SoftWorstCaseDistance(CosineSimilarity(), alpha=alpha), views, labels)
    rows = views.tolist()
    for i in range(len(labels)):
        for j in range(len(labels)):
            per_view = [cosine(view[i], view[j]) for view in rows]
            positive = bool(labels[i] == labels[j])
            expected = soft_extreme(per_view, alpha, maximum=not positive)  # least similar positive
            assert result[i, j].item() == pytest.approx(expected, abs=1e-9)


def test_soft_worst_case_tends_to_max_and_min_as_alpha_grows():
    values = torch.tensor([[[0.3, 1.2]], [[0.9, 0.4]], [[0.5, 0.8]]], dtype=torch.float64)  # [V=3, 1, 2]
    same = torch.tensor([[True, False]])
    errors = []
    for alpha in (1.0, 10.0, 100.0, 1000.0):
        out = soft_worst_case(values, same, alpha, is_similarity=False)
        errors.append(abs(out[0, 0].item() - 0.9) + abs(out[0, 1].item() - 0.4))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-9
    similarity = soft_worst_case(values, same, 1000.0, is_similarity=True)
    assert similarity[0, 0].item() == pytest.approx(0.3) and similarity[0, 1].item() == pytest.approx(1.2)
    mean = soft_worst_case(values, same, 0.0, is_similarity=False)
    assert torch.allclose(mean, values.mean(0))


def test_one_view_is_that_view_exactly():
    views, labels = random_views(num_views=1)
    base = LpDistance()
    assert torch.equal(aggregated(SoftWorstCaseDistance(base, alpha=32), views, labels), base(views[0]))


def test_plain_distance_outside_a_training_step():
    views, _ = random_views()
    distance = SoftWorstCaseDistance(LpDistance(), alpha=32)
    assert torch.equal(distance(views[0]), LpDistance()(views[0]))
    assert distance.is_inverted is False
    assert SoftWorstCaseDistance(CosineSimilarity()).is_inverted is True


def test_comparing_other_embeddings_is_refused():
    views, labels = random_views()
    distance = SoftWorstCaseDistance(LpDistance(), alpha=32, role="metric_loss")
    inputs = LossInputs(embeddings=views[-1], labels=labels).with_views(views)
    with bound_loss_inputs(inputs), pytest.raises(ConfigError, match="loss_funcs.metric_loss: .*proxies"):
        distance(inputs.embeddings, torch.randn(3, 4, dtype=torch.float64))
