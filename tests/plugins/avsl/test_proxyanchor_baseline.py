"""The Proxy-Anchor baseline as the AVSL release runs it (plugins/avsl/baseline.py).

Checked against: the published definition of ``kaiming_uniform_(a=sqrt(5))`` (entries uniform in
+-1/sqrt(E), row norm sqrt(1/3)) and of Kaiming-normal fan_out (std sqrt(2 / fan_out)); the loss
written out with Python loops; pytorch-metric-learning's cosine ``ProxyAnchorLoss`` for the
squared option. The comparison with the official code itself: bench/results/proxyanchor_official_step.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from pytorch_metric_learning.losses import ProxyAnchorLoss

import dmlbench.plugins  # noqa: F401  (registers the plugins' classes)
from dmlbench.cli import build_parser, reproduced_configs
from dmlbench.errors import ConfigError
from dmlbench.models.embedders import MLP
from dmlbench.plugins.avsl.baseline import ProxyAnchorDistanceLoss
from dmlbench.registry import build

EXP_CONFIGS = Path(__file__).resolve().parents[3] / "exp_configs"
BASELINES = [f"{d}_proxyanchor{p}" for d in ("cub", "car", "sop") for p in ("", "_mlrc")]
CLASSES = {"cub": 100, "car": 98, "sop": 11318}


def resolved(name: str) -> dict[str, Any]:
    args, _ = build_parser().parse_known_args(["--reproduce_results", str(EXP_CONFIGS / name)])
    merged: dict[str, Any] = {}
    for values in reproduced_configs(args).values():
        merged.update(values)
    return merged


@pytest.mark.parametrize("name", BASELINES)
def test_the_configs_build_the_official_proxies_loss_and_embedder(name: str) -> None:
    config = resolved(name)
    torch.manual_seed(0)
    loss = build(
        "loss",
        config["loss_funcs"]["metric_loss"],
        role="metric_loss",
        context={"num_classes": CLASSES[name[:3]], "embedding_size": 512},
    )
    proxies = loss.proxies.detach()
    bound = 1 / math.sqrt(512)  # kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3) * sqrt(3 / fan_in)
    assert float(proxies.abs().max()) <= bound
    assert float(proxies.norm(dim=1).mean()) == pytest.approx(math.sqrt(1 / 3), abs=0.01)
    assert loss.distance_form == "euclidean" and loss.alpha == 16 and loss.pos_margin == 1.8
    assert loss.neg_margin == (2.4 if name.startswith("sop") else 2.2)
    embedder = config["models"]["embedder"]["MLP"]
    assert embedder == {"layer_sizes": [512], "weight_init": "kaiming_normal_fan_out"}


def loop_loss(embeddings, labels, proxies, alpha, pos_margin, neg_margin, squared):
    """The release's loss written out: rows samples, columns proxies, add-one log-sum-exp per column."""

    def normalized(vector: list[float]) -> list[float]:
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector]

    unit = [normalized(e) for e in embeddings.tolist()]
    centres = [normalized(p) for p in proxies.tolist()]
    pos_terms, neg_terms = [], []
    for c, centre in enumerate(centres):
        pos_sum = neg_sum = 0.0
        has_positive = False
        for row, label in zip(unit, labels.tolist()):
            d2 = sum((a - b) ** 2 for a, b in zip(row, centre))
            d = d2 if squared else math.sqrt(d2)
            if label == c:
                has_positive = True
                pos_sum += math.exp(alpha * (d - pos_margin))
            else:
                neg_sum += math.exp(-alpha * (d - neg_margin))
        if has_positive:
            pos_terms.append(math.log(1 + pos_sum))
        neg_terms.append(math.log(1 + neg_sum))
    return sum(pos_terms) / len(pos_terms) + sum(neg_terms) / len(neg_terms)


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean"])
def test_the_loss_is_the_written_out_definition(distance: str) -> None:
    torch.manual_seed(3)
    loss = ProxyAnchorDistanceLoss(5, 4, alpha=16, pos_margin=1.8, neg_margin=2.4, distance=distance).double()
    embeddings = torch.randn(9, 4, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1, 3, 3, 4, 0])  # class 2 has no positive in the batch
    expected = loop_loss(embeddings, labels, loss.proxies.detach(), 16, 1.8, 2.4, distance != "euclidean")
    assert float(loss(embeddings, labels)) == pytest.approx(expected, rel=1e-12)


def test_squared_distances_are_the_cosine_proxy_anchor_of_kim_et_al() -> None:
    torch.manual_seed(4)
    ours = ProxyAnchorDistanceLoss(7, 16, distance="squared_euclidean").double()
    library = ProxyAnchorLoss(num_classes=7, embedding_size=16, margin=0.1, alpha=32).double()
    with torch.no_grad():
        library.proxies.copy_(ours.proxies)
    embeddings = torch.randn(20, 16, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 7, (20,))
    a, b = ours(embeddings, labels), library(embeddings, labels)
    assert float(a) == pytest.approx(float(b), rel=1e-12)
    (ga,) = torch.autograd.grad(a, embeddings)
    (gb,) = torch.autograd.grad(b, embeddings)
    assert torch.allclose(ga, gb, rtol=0, atol=1e-12)
    # and the non-squared form is a different loss
    assert float(ProxyAnchorDistanceLoss(7, 16).double()(embeddings, labels)) != pytest.approx(float(a))


def test_mlp_kaiming_normal_fan_out_and_zero_bias() -> None:
    torch.manual_seed(0)
    mlp = MLP(layer_sizes=[512], input_size=2048, weight_init="kaiming_normal_fan_out")
    linear = mlp.net[0]
    assert float(linear.weight.std()) == pytest.approx(math.sqrt(2 / 512), rel=0.01)
    assert float(linear.weight.mean()) == pytest.approx(0, abs=1e-3)
    assert torch.count_nonzero(linear.bias) == 0
    default = MLP(layer_sizes=[512], input_size=2048).net[0]  # PyTorch's: uniform in +-1/sqrt(fan_in)
    assert float(default.weight.abs().max()) <= 1 / math.sqrt(2048)
    assert torch.count_nonzero(default.bias) > 0


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ProxyAnchorDistanceLoss(3, 4, distance="cosine"), "distance must be one of"),
        (lambda: MLP(layer_sizes=[4], input_size=8, weight_init="xavier"), "weight_init must be one of"),
    ],
)
def test_unknown_forms_are_config_errors(make, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()
