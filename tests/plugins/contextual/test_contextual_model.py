"""ContextualEmbedder (the paper's head) and TrainProjector (the 224-px train-only projector)."""

from __future__ import annotations

import math

import pytest
import torch

from dmlbench.errors import ConfigError
from dmlbench.plugins.contextual import ContextualEmbedder, ContextualHybridLoss, TrainProjector
from dmlbench.registry import build
from dmlbench.training.plugins import LossInputs
from dmlbench.training.trainer import Trainer, TrainerSettings


def _written_out(
    features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, layer_norm: bool
) -> torch.Tensor:
    rows = []
    for f in features.double().tolist():
        if layer_norm:
            mean = sum(f) / len(f)
            var = sum((v - mean) ** 2 for v in f) / len(f)
            f = [(v - mean) / math.sqrt(var + 1e-5) for v in f]
        out = [
            sum(w * v for w, v in zip(row, f)) + (0.0 if bias is None else float(b))
            for row, b in zip(
                weight.double().tolist(), bias.tolist() if bias is not None else [0.0] * len(weight)
            )
        ]
        norm = math.sqrt(sum(v * v for v in out))
        rows.append([v / norm for v in out])
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("layer_norm,bias", [(True, True), (False, True), (False, False)])
def test_embedder_is_layernorm_linear_l2(layer_norm: bool, bias: bool) -> None:
    torch.manual_seed(0)
    head = ContextualEmbedder(input_size=12, embedding_size=5, layer_norm=layer_norm, bias=bias)
    features = torch.randn(4, 12) * 3 + 1
    bias_values = None if head.remap.bias is None else head.remap.bias.detach()
    expected = _written_out(features, head.remap.weight.detach(), bias_values, layer_norm)
    assert torch.allclose(head(features).double(), expected, atol=1e-5)
    assert head.num_features == 5
    assert not [p for p in head.parameters() if p.ndim == 1 and p.numel() == 12]  # LayerNorm has no affine


def test_kaiming_fan_out_init_has_the_right_scale_and_zero_bias() -> None:
    torch.manual_seed(0)
    head = ContextualEmbedder(input_size=2048, embedding_size=512, layer_norm=False, init="kaiming_fan_out")
    assert float(head.remap.bias.detach().abs().max()) == 0.0
    # Kaiming normal, fan-out mode: std = gain / sqrt(fan_out) = sqrt(2) / sqrt(512)
    assert float(head.remap.weight.detach().std()) == pytest.approx(math.sqrt(2.0 / 512), rel=0.02)


def test_embedder_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="init"):
        ContextualEmbedder(input_size=8, init="xavier")
    with pytest.raises(ConfigError, match="embedding_size"):
        ContextualEmbedder(input_size=8, embedding_size=0)


def test_projector_feeds_the_loss_the_normalised_projection_and_gets_gradients(tmp_path) -> None:
    torch.manual_seed(0)
    plugin = build(
        "training_plugin",
        {"TrainProjector": {"output_size": 32}},
        role="training_plugins.TrainProjector",
        context={"embedding_size": 8, "num_classes": 4},
    )
    assert isinstance(plugin, TrainProjector) and set(plugin.modules()) == {"projector"}
    settings = TrainerSettings(
        num_epochs=1, iterations_per_epoch=1, save_interval=1, patience=1, device=torch.device("cpu"), seed=0
    )
    loss = ContextualHybridLoss(version="224", lam=0.05, reg_sim=0.3)
    trainer = Trainer(
        {},
        {"metric_loss": loss},
        {},
        [plugin],
        {},
        lambda epoch: None,
        lambda m, e: {},
        settings,
        tmp_path / "checkpoints",
    )
    embeddings = torch.randn(16, 8, requires_grad=True)
    labels = torch.arange(4).repeat_interleave(4)
    total = trainer.compute_losses(LossInputs(embeddings=embeddings, labels=labels))["metric_loss"]
    projected = torch.nn.functional.normalize(embeddings @ plugin.projector.weight.T, dim=1)
    assert total.item() == pytest.approx(loss(projected, labels).item(), abs=1e-6)
    total.backward()
    assert plugin.projector.weight.grad is not None and plugin.projector.weight.grad.abs().sum() > 0
    assert embeddings.grad.abs().sum() > 0


def test_projector_needs_the_embedding_size() -> None:
    with pytest.raises(ConfigError, match="embedding_size"):
        TrainProjector()
