"""The SDM plugin in the training step: exactness with one view, the four published losses on
views against their definitions, gradients, mining, composition and configuration errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from pytorch_metric_learning.losses import (
    ContrastiveLoss,
    MarginLoss,
    MultiSimilarityLoss,
    ProxyAnchorLoss,
    TripletMarginLoss,
)
from pytorch_metric_learning.miners import MultiSimilarityMiner
from sdm_helpers import cosine, euclidean, soft_extreme
from torch import nn

from dmlbench.errors import ConfigError
from dmlbench.plugins.sdm import SDM, dropout_views
from dmlbench.registry import build
from dmlbench.training.plugins import LossInputs, TrainingPlugin

LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])


def batch(seed=0, dim=5, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(len(LABELS), dim, generator=generator, dtype=dtype)


def published_losses():
    """The four losses of the SDM paper with its Cars196 hyperparameters (docs/methods/sdm.md)."""
    return {
        "ms": MultiSimilarityLoss(alpha=14.36, beta=75.83, base=0.6616),
        "contrastive": ContrastiveLoss(pos_margin=0.265, neg_margin=0.541),
        "triplet": TripletMarginLoss(margin=0.119, triplets_per_anchor="all"),
        "margin": MarginLoss(margin=0.078, beta=1.316, nu=0, learn_beta=True, num_classes=None),
    }


class FixedViews(TrainingPlugin):
    """Test plugin (a): hands the losses given views."""

    def __init__(self, views):
        self.views = views

    def make_views(self, inputs, context):
        return inputs.with_views(self.views)


class AppendSamples(TrainingPlugin):
    """Test plugin (b): appends the first two samples, negated, with labels 7 and 7."""

    def loss_inputs(self, inputs, context):
        return inputs.add_samples(-inputs.embeddings[:2], torch.tensor([7, 7]))


class RecordingMiner(MultiSimilarityMiner):
    def forward(self, embeddings, labels, *args, **kwargs):
        self.seen = (embeddings.detach().clone(), labels.clone())
        return super().forward(embeddings, labels, *args, **kwargs)


# ------------------------------------------------------------------ exactness with one view
@pytest.mark.parametrize("name", ["ms", "contrastive", "triplet", "margin"])
def test_one_view_without_dropout_equals_the_plain_loss_exactly(make_trainer, name):
    plain = published_losses()[name]
    trainer = make_trainer({"metric_loss": copy.deepcopy(plain)}, [SDM(num_views=1, dropout=0.0, alpha=32)])
    embeddings = batch()
    sdm_loss = trainer.compute_losses(LossInputs(embeddings=embeddings, labels=LABELS))["metric_loss"]
    assert torch.equal(sdm_loss, plain(embeddings, LABELS))


# ------------------------------------------------------------------ losses on views, by definition
def per_view(function, views, i, j):
    return [function(view[i], view[j]) for view in views]


def independent_loss(name, views, labels, alpha):
    """The loss of ``name`` on the soft worst-case pair values, written from the definitions."""
    rows, labels = views.tolist(), labels.tolist()
    n = len(labels)
    same = lambda i, j: labels[i] == labels[j]  # noqa: E731
    d = lambda i, j: soft_extreme(per_view(euclidean, rows, i, j), alpha, maximum=same(i, j))  # noqa: E731
    s = lambda i, j: soft_extreme(per_view(cosine, rows, i, j), alpha, maximum=not same(i, j))  # noqa: E731
    positives = [(i, j) for i in range(n) for j in range(n) if i != j and same(i, j)]
    negatives = [(i, j) for i in range(n) for j in range(n) if not same(i, j)]
    triplets = [(a, p, q) for a, p in positives for q in range(n) if not same(a, q)]
    if (
        name == "ms"
    ):  # mean over anchors of (1/a) log(1 + sum_p e^{-a(S-base)}) + (1/b) log(1 + sum_n e^{b(S-base)})
        a, b, base = 14.36, 75.83, 0.6616
        total = 0.0
        for i in range(n):
            pos = sum(math.exp(-a * (s(i, j) - base)) for j in range(n) if j != i and same(i, j))
            neg = sum(math.exp(b * (s(i, j) - base)) for j in range(n) if not same(i, j))
            total += math.log1p(pos) / a + math.log1p(neg) / b
        return total / n
    if name == "contrastive":  # mean of the non-zero positive terms + mean of the non-zero negative terms
        pos = [max(d(i, j) - 0.265, 0.0) for i, j in positives]
        neg = [max(0.541 - d(i, j), 0.0) for i, j in negatives]
        mean_nonzero = lambda xs: sum(xs) / max(1, sum(x > 0 for x in xs))  # noqa: E731
        return mean_nonzero(pos) + mean_nonzero(neg)
    if name == "triplet":  # mean of the non-zero relu(d_ap - d_an + margin)
        losses = [max(d(a, p) - d(a, q) + 0.119, 0.0) for a, p, q in triplets]
        return sum(losses) / max(1, sum(x > 0 for x in losses))
    if name == "margin":  # sum(relu(d_ap - beta + m) + relu(beta - d_an + m)) / #non-zero terms
        beta, margin = (
            float(torch.tensor(1.316, dtype=torch.float32)),
            0.078,
        )  # MarginLoss stores beta in float32
        pos = [max(d(a, p) - beta + margin, 0.0) for a, p, q in triplets]
        neg = [max(beta - d(a, q) + margin, 0.0) for a, p, q in triplets]
        return (sum(pos) + sum(neg)) / max(1, sum(x > 0 for x in pos) + sum(x > 0 for x in neg))
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["ms", "contrastive", "triplet", "margin"])
def test_losses_on_views_follow_their_published_definitions(make_trainer, name):
    generator = torch.Generator().manual_seed(3)
    views = batch().unsqueeze(0) + 0.3 * torch.randn(
        4, len(LABELS), 5, generator=generator, dtype=torch.float64
    )
    alpha = 8.0
    plugins = [FixedViews(views), SDM(num_views=1, dropout=0.0, alpha=alpha)]  # views of views: 4 x 1
    trainer = make_trainer({"metric_loss": published_losses()[name]}, plugins)
    loss = trainer.compute_losses(LossInputs(embeddings=views[0], labels=LABELS))["metric_loss"]
    assert loss.item() == pytest.approx(independent_loss(name, views, LABELS, alpha), rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------ views, gradients, mining
def test_dropout_views_are_independent_masks():
    torch.manual_seed(0)
    embeddings = torch.rand(1, 64, 128) + 0.5
    p = 0.05
    views = dropout_views(embeddings, 64, p)
    assert views.shape == (64, 64, 128)
    kept = views != 0
    assert torch.allclose(views[kept], (embeddings.expand_as(views) / (1 - p))[kept])
    dropped = 1 - kept.double().mean().item()
    assert abs(dropped - p) < 0.005  # 524288 Bernoulli(0.05) draws: sd 0.0003
    assert not torch.equal(kept[0], kept[1])
    assert torch.equal(dropout_views(embeddings, 3, 0.0), embeddings.expand(3, -1, -1))
    two = torch.stack([embeddings[0], -embeddings[0]])
    assert torch.equal(dropout_views(two, 2, 0.0)[2], -embeddings[0])  # masks of view 0 first


def test_gradients_flow_to_the_embedder_through_every_view(make_trainer):
    torch.manual_seed(0)
    embedder = nn.Linear(6, 5)
    features = torch.randn(len(LABELS), 6)
    views_leaf = (
        (embedder(features).unsqueeze(0) + 0.2 * torch.randn(4, len(LABELS), 5)).detach().requires_grad_()
    )
    trainer = make_trainer(
        {"metric_loss": MultiSimilarityLoss()}, [FixedViews(views_leaf), SDM(1, 0.0, alpha=4)]
    )
    trainer.compute_losses(LossInputs(embeddings=views_leaf[0], labels=LABELS))["metric_loss"].backward()
    assert all(views_leaf.grad[v].abs().sum() > 0 for v in range(4))

    trainer = make_trainer({"metric_loss": TripletMarginLoss(margin=0.5)}, [SDM(num_views=8, dropout=0.3)])
    loss = trainer.compute_losses(LossInputs(embeddings=embedder(features), labels=LABELS))["metric_loss"]
    loss.backward()
    assert loss.item() > 0
    assert torch.isfinite(embedder.weight.grad).all() and embedder.weight.grad.abs().sum() > 0


def test_the_miner_sees_the_clean_embeddings_or_with_last_view_the_last_dropout_view(make_trainer):
    torch.manual_seed(0)
    embeddings = torch.rand(len(LABELS), 16) + 0.5
    miner = RecordingMiner(epsilon=0.1)
    trainer = make_trainer(
        {"metric_loss": MultiSimilarityLoss()}, [SDM(num_views=4, dropout=0.5)], miners={"tuple_miner": miner}
    )
    trainer.compute_losses(LossInputs(embeddings=embeddings, labels=LABELS))
    assert torch.equal(miner.seen[0], embeddings) and torch.equal(miner.seen[1], LABELS)  # official: clean

    miner = RecordingMiner(epsilon=0.1)
    trainer = make_trainer(
        {"metric_loss": MultiSimilarityLoss()},
        [SDM(num_views=4, dropout=0.5, mine_on="last_view")],
        miners={"tuple_miner": miner},
    )
    trainer.compute_losses(LossInputs(embeddings=embeddings, labels=LABELS))
    seen, labels = miner.seen
    assert torch.equal(labels, LABELS)
    zero = seen == 0
    assert zero.any() and torch.allclose(seen[~zero], 2 * embeddings[~zero])


# ------------------------------------------------------------------ composition with added samples
def test_samples_added_by_another_plugin_get_views_in_either_config_order(make_trainer):
    embeddings = batch(seed=4, dtype=torch.float32)
    extended = torch.cat([embeddings, -embeddings[:2]])
    extended_labels = torch.cat([LABELS, torch.tensor([7, 7])])
    plain = ContrastiveLoss(pos_margin=0.1, neg_margin=0.9)
    exact = make_trainer({"metric_loss": copy.deepcopy(plain)}, [SDM(1, 0.0), AppendSamples()])
    loss = exact.compute_losses(LossInputs(embeddings=embeddings, labels=LABELS))["metric_loss"]
    assert torch.equal(loss, plain(extended, extended_labels))

    results = []
    for order in ([SDM(16, 0.2), AppendSamples()], [AppendSamples(), SDM(16, 0.2)]):
        miner = RecordingMiner(epsilon=0.1)
        trainer = make_trainer({"metric_loss": copy.deepcopy(plain)}, order, miners={"tuple_miner": miner})
        torch.manual_seed(1)
        results.append(
            trainer.compute_losses(LossInputs(embeddings=embeddings, labels=LABELS))["metric_loss"]
        )
        assert torch.equal(miner.seen[1], extended_labels)
    assert torch.equal(results[0], results[1])


# ------------------------------------------------------------------ configuration
def test_built_from_config_through_the_registry():
    plugin = build(
        "training_plugin", {"SDM": {"num_views": 8, "dropout": 0.1, "alpha": 16}}, role="training_plugins.SDM"
    )
    assert isinstance(plugin, SDM) and (plugin.num_views, plugin.dropout, plugin.alpha) == (8, 0.1, 16.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_views": 0}, "num_views"),
        ({"dropout": 1.0}, "dropout"),
        ({"alpha": -1}, "alpha"),
        ({"losses": "metric_loss"}, "losses"),
        ({"num_views": 64, "trunk_passes": 5}, "trunk_passes"),
        ({"trunk_passes": 0}, "trunk_passes"),
        ({"mine_on": "views"}, "mine_on"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=f"training_plugins.SDM.{message}"):
        SDM(**kwargs)


def test_losses_without_a_pairwise_distance_are_refused(make_trainer):
    with pytest.raises(ConfigError, match="no loss in loss_funcs has a pytorch-metric-learning distance"):
        make_trainer({"classifier_loss": nn.CrossEntropyLoss()}, [SDM()])
    with pytest.raises(ConfigError, match="no loss 'metric_los'"):
        make_trainer({"metric_loss": ContrastiveLoss()}, [SDM(losses=["metric_los"])])
    trainer = make_trainer(
        {"metric_loss": ProxyAnchorLoss(num_classes=3, embedding_size=5)}, [SDM(num_views=2)]
    )
    with pytest.raises(ConfigError, match="loss_funcs.metric_loss: .*MultiSimilarityLoss"):
        trainer.compute_losses(LossInputs(embeddings=batch(dtype=torch.float32), labels=LABELS))


def test_only_the_listed_losses_are_wrapped(make_trainer):
    losses = {"metric_loss": ContrastiveLoss(), "other_loss": TripletMarginLoss()}
    trainer = make_trainer(losses, [SDM(losses=["other_loss"])])
    assert type(trainer.losses["metric_loss"].distance).__name__ == "LpDistance"
    assert type(trainer.losses["other_loss"].distance).__name__ == "SoftWorstCaseDistance"
