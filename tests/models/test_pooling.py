"""Global poolings against hand computations."""

from __future__ import annotations

import pytest
import torch

from dmlbench.errors import ConfigError
from dmlbench.models.pooling import GeneralizedMeanPooling, build_pooling

# one image, two channels, a 2x2 map
FEATURES = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.5, -1.0], [2.0, 0.0]]]])


def test_gem_with_p3_is_the_cubic_mean_of_the_clamped_values():
    eps = 1e-6
    pooled = GeneralizedMeanPooling(p=3.0, eps=eps)(FEATURES)
    # channel 0: ((1 + 8 + 27 + 64) / 4) ** (1/3) = 25 ** (1/3)
    # channel 1: negatives and zeros clamp to eps: ((0.125 + eps^3 + 8 + eps^3) / 4) ** (1/3)
    expected = torch.tensor([[25.0 ** (1 / 3), ((0.125 + 8.0 + 2 * eps**3) / 4) ** (1 / 3)]])
    assert torch.allclose(pooled, expected, atol=1e-6)


def test_gem_p1_is_average_pooling_of_positive_maps():
    positive = FEATURES.abs() + 0.1
    assert torch.allclose(GeneralizedMeanPooling(p=1.0)(positive), positive.mean(dim=(2, 3)), atol=1e-6)


def test_gem_power_is_fixed_unless_learnable():
    fixed = GeneralizedMeanPooling()
    assert not list(fixed.parameters()) and float(fixed.p) == 3.0
    learnable = GeneralizedMeanPooling(learnable=True)
    learnable(FEATURES.abs() + 0.1).sum().backward()
    assert learnable.p.grad is not None and learnable.p.grad.abs() > 0


def test_average_max_and_their_sum():
    assert torch.equal(build_pooling("avg")(FEATURES), torch.tensor([[2.5, 0.375]]))
    assert torch.equal(build_pooling("max")(FEATURES), torch.tensor([[4.0, 2.0]]))
    assert torch.equal(build_pooling("avg+max")(FEATURES), torch.tensor([[6.5, 2.375]]))


def test_unknown_pooling_names_the_choices():
    with pytest.raises(ConfigError, match="did you mean avg"):
        build_pooling("avgg")
