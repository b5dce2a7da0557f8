"""The MLRC concatenated ensemble against a hand computation."""

import math

import torch

from dmlbench.evaluation.ensemble import concatenate_normalized


def test_concatenation_normalises_each_model_then_the_whole():
    a = torch.tensor([[3.0, 4.0]])  # n(a) = [0.6, 0.8]
    b = torch.tensor([[0.0, 2.0, 0.0]])  # n(b) = [0, 1, 0]
    out = concatenate_normalized([a, b])
    # [0.6, 0.8, 0, 1, 0] has norm sqrt(2)
    expected = torch.tensor([[0.6, 0.8, 0.0, 1.0, 0.0]]) / math.sqrt(2)
    assert torch.allclose(out, expected)


def test_model_scale_does_not_matter():
    a, b = torch.randn(5, 4), torch.randn(5, 3)
    assert torch.allclose(
        concatenate_normalized([a, b]), concatenate_normalized([10 * a, 0.1 * b]), atol=1e-6
    )
