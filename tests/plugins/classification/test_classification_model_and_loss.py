"""The classification baseline's head and loss against direct computations of the paper's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from dmlbench.errors import ConfigError
from dmlbench.plugins.classification import NormalizedEmbedder
from dmlbench.training.components import build_losses


def test_normalised_softmax_loss_is_cross_entropy_over_cosines_divided_by_the_temperature() -> None:
    """Zhai & Wu: loss_i = -log( exp(cos(x_i, w_{y_i}) / T) / sum_c exp(cos(x_i, w_c) / T) ), mean over i."""
    torch.manual_seed(0)
    num_classes, dim, temperature = 5, 8, 0.05
    loss_fn = build_losses(
        {"loss_funcs": {"metric_loss": {"NormalizedSoftmaxLoss": {"temperature": temperature}}}},
        {"num_classes": num_classes, "embedding_size": dim},
    )["metric_loss"]
    with torch.no_grad():  # class weights of very different lengths: only their directions may count
        loss_fn.W.copy_(torch.randn(dim, num_classes) * torch.tensor([0.1, 1.0, 3.0, 10.0, 0.5]))
    embeddings = torch.randn(6, dim) * 4.0
    labels = torch.tensor([0, 1, 2, 3, 4, 1])

    weights = [loss_fn.W[:, c].tolist() for c in range(num_classes)]

    def cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    expected = 0.0
    for x, y in zip(embeddings.tolist(), labels.tolist()):
        logits = [cosine(x, w) / temperature for w in weights]
        top = max(logits)
        log_sum = top + math.log(sum(math.exp(v - top) for v in logits))
        expected += (log_sum - logits[y]) / len(labels)
    assert loss_fn(embeddings, labels).item() == pytest.approx(expected, rel=1e-5)


def test_embedder_standardises_without_affine_then_l2_normalises() -> None:
    torch.manual_seed(0)
    features = torch.randn(4, 16) * 3 + 2
    embedder = NormalizedEmbedder(input_size=16)
    assert embedder.num_features == 16
    assert list(embedder.parameters()) == []  # LayerNorm without affine, no remap at full width
    expected = []
    for row in features.tolist():
        mean = sum(row) / len(row)
        variance = sum((v - mean) ** 2 for v in row) / len(row)  # biased, as LayerNorm
        standardised = [(v - mean) / math.sqrt(variance + 1e-5) for v in row]
        norm = math.sqrt(sum(v * v for v in standardised))
        expected.append([v / norm for v in standardised])
    assert torch.allclose(embedder(features), torch.tensor(expected), atol=1e-6)


def test_embedder_remaps_with_a_bias_free_linear_layer_when_the_size_changes() -> None:
    torch.manual_seed(0)
    embedder = NormalizedEmbedder(input_size=16, embedding_size=4, normalize=False)
    assert embedder.num_features == 4
    assert [tuple(p.shape) for p in embedder.parameters()] == [(4, 16)]
    features = torch.randn(3, 16)
    standardised = (features - features.mean(1, keepdim=True)) / torch.sqrt(
        features.var(1, unbiased=False, keepdim=True) + 1e-5
    )
    assert torch.allclose(embedder(features), standardised @ embedder.remap.weight.T, atol=1e-5)


def test_embedder_rejects_a_non_positive_size() -> None:
    with pytest.raises(ConfigError, match="embedding_size"):
        NormalizedEmbedder(input_size=16, embedding_size=0)
