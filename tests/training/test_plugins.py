"""The training step's extension points: call order, views and mining, added samples, custom
distances, view-aggregating distances, and plugin modules with their own optimizer and warm-up."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity, DotProductSimilarity, LpDistance, SNRDistance
from pytorch_metric_learning.losses import ContrastiveLoss
from pytorch_metric_learning.miners import BatchEasyHardMiner
from torch import nn

from dmlbench.errors import ConfigError
from dmlbench.training.components import build_optimization
from dmlbench.training.plugins import (
    LossInputs,
    MultiViewDistance,
    StepContext,
    TrainingPlugin,
    _bound_inputs,
    bound_loss_inputs,
    per_view_matrices,
)
from dmlbench.training.trainer import Trainer, TrainerSettings

LABELS = torch.tensor([0, 0, 1, 1, 2, 2])


def settings(**overrides):
    values = dict(
        num_epochs=1, iterations_per_epoch=1, save_interval=1, patience=10, device=torch.device("cpu"), seed=0
    )
    values.update(overrides)
    return TrainerSettings(**values)


def step_trainer(tmp_path, losses, plugins, miners=None):
    return Trainer(
        {},
        losses,
        miners or {},
        plugins,
        {},
        lambda epoch: None,
        lambda models, epoch: {},
        settings(),
        tmp_path / "checkpoints",
    )


def embeddings(seed=0, n=6, dim=3):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class Recorder(TrainingPlugin):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def wrap_distance(self, distance, loss_role):
        self.log.append((self.name, "wrap_distance", loss_role))
        return distance

    def setup(self, context):
        self.log.append((self.name, "setup"))

    def loss_inputs(self, inputs, context):
        self.log.append((self.name, "loss_inputs", len(inputs.labels), inputs.views is None))
        return inputs

    def make_views(self, inputs, context):
        self.log.append((self.name, "make_views", len(inputs.labels)))
        return inputs


class Doubler(TrainingPlugin):
    """(b) appends a negated copy of the batch, labels shifted by 100."""

    def loss_inputs(self, inputs, context):
        return inputs.add_samples(-inputs.embeddings, inputs.labels + 100)


class ShiftViews(TrainingPlugin):
    """(a) two views: the embeddings and the embeddings plus a constant shift."""

    def make_views(self, inputs, context):
        return inputs.with_views(torch.stack([inputs.embeddings, inputs.embeddings + 1.0]))


class MeanOverViews(MultiViewDistance):
    def aggregate(self, matrices, same_label):
        return matrices.mean(0)


class WrapWith(TrainingPlugin):
    def __init__(self, factory):
        self.factory = factory

    def wrap_distance(self, distance, loss_role):
        return self.factory(distance)


class RecordingMiner(BatchEasyHardMiner):
    def forward(self, embeddings, labels, *args, **kwargs):
        self.seen = embeddings.detach().clone()
        return super().forward(embeddings, labels, *args, **kwargs)


def test_call_order_samples_before_views_in_config_order(tmp_path):
    log = []
    plugins = [Recorder("A", log), Doubler(), Recorder("B", log)]
    trainer = step_trainer(tmp_path, {"metric_loss": ContrastiveLoss(), "no_distance": nn.MSELoss()}, plugins)
    assert log == [
        ("A", "wrap_distance", "metric_loss"),
        ("B", "wrap_distance", "metric_loss"),
        ("A", "setup"),
        ("B", "setup"),
    ]
    log.clear()
    trainer.losses.pop("no_distance")
    trainer.compute_losses(LossInputs(embeddings=embeddings(), labels=LABELS))
    assert log == [
        ("A", "loss_inputs", 6, True),
        ("B", "loss_inputs", 12, True),
        ("A", "make_views", 12),
        ("B", "make_views", 12),
    ]


class Tagged(LpDistance):
    def __init__(self, base, tag):
        super().__init__()
        self.base, self.tag = base, tag


def test_last_plugin_wraps_outermost_and_one_view_aggregation_per_loss(tmp_path):
    first = lambda d: Tagged(d, "first")  # noqa: E731
    views = lambda d: MeanOverViews(d, role="metric_loss")  # noqa: E731
    trainer = step_trainer(tmp_path, {"metric_loss": ContrastiveLoss()}, [WrapWith(first), WrapWith(views)])
    outer = trainer.losses["metric_loss"].distance
    assert (
        isinstance(outer, MeanOverViews)
        and outer.base.tag == "first"
        and isinstance(outer.base.base, LpDistance)
    )
    with pytest.raises(ConfigError, match="loss_funcs.metric_loss: two training plugins aggregate"):
        step_trainer(
            tmp_path, {"metric_loss": ContrastiveLoss()}, [WrapWith(views), WrapWith(first), WrapWith(views)]
        )


def test_add_samples_and_with_views_keep_shapes_consistent():
    inputs = LossInputs(embeddings=embeddings(), labels=LABELS)
    more = inputs.add_samples(embeddings(1, n=2), torch.tensor([5, 5]))
    assert more.embeddings.shape == (8, 3) and more.labels.tolist() == LABELS.tolist() + [5, 5]
    assert inputs.embeddings.shape == (6, 3)  # the original is unchanged
    views = torch.stack([more.embeddings, 2 * more.embeddings])
    viewed = more.with_views(views)
    assert torch.equal(viewed.embeddings, 2 * more.embeddings) and torch.equal(viewed.view_stack(), views)
    assert torch.equal(inputs.view_stack(), inputs.embeddings.unsqueeze(0))
    with pytest.raises(ValueError, match="add samples in loss_inputs"):
        viewed.add_samples(embeddings(1, n=2), torch.tensor([5, 5]))
    with pytest.raises(ValueError, match="add_samples"):
        inputs.add_samples(embeddings(1, n=2, dim=4), torch.tensor([5, 5]))
    with pytest.raises(ValueError, match="with_views"):
        inputs.with_views(views)


def test_views_reach_the_loss_and_the_miner_sees_the_last(tmp_path):
    x = embeddings()
    miner = RecordingMiner()
    trainer = step_trainer(
        tmp_path,
        {"metric_loss": ContrastiveLoss(neg_margin=2.0)},
        [WrapWith(lambda d: MeanOverViews(d)), ShiftViews()],
        miners={"m": miner},
    )
    loss = trainer.compute_losses(LossInputs(embeddings=x, labels=LABELS))["metric_loss"]
    assert torch.equal(miner.seen, x + 1.0)

    # independent: per-view normalised euclidean distances, averaged over the two views
    def dist(a, b):
        ua, ub = a / a.norm(), b / b.norm()
        return (ua - ub).norm().item()

    a1, p, a2, n = miner(x + 1.0, LABELS)
    mean_d = lambda i, j: (dist(x[i], x[j]) + dist(x[i] + 1, x[j] + 1)) / 2  # noqa: E731
    pos = [mean_d(i, j) for i, j in zip(a1.tolist(), p.tolist())]
    neg = [max(0.0, 2.0 - mean_d(i, j)) for i, j in zip(a2.tolist(), n.tolist())]
    mean_nonzero = lambda xs: sum(xs) / max(1, sum(v > 0 for v in xs))  # noqa: E731
    assert loss.item() == pytest.approx(mean_nonzero(pos) + mean_nonzero(neg), rel=1e-9)


def test_custom_training_distance(tmp_path):
    x = embeddings(2)
    squared = lambda d: LpDistance(power=2)  # noqa: E731
    trainer = step_trainer(
        tmp_path, {"metric_loss": ContrastiveLoss(pos_margin=0.0, neg_margin=10.0)}, [WrapWith(squared)]
    )
    loss = trainer.compute_losses(LossInputs(embeddings=x, labels=LABELS))["metric_loss"]
    unit = x / x.norm(dim=1, keepdim=True)
    sq = lambda i, j: float(((unit[i] - unit[j]) ** 2).sum())  # noqa: E731
    pos = [sq(i, j) for i in range(6) for j in range(6) if i != j and LABELS[i] == LABELS[j]]
    neg = [10.0 - sq(i, j) for i in range(6) for j in range(6) if LABELS[i] != LABELS[j]]
    assert loss.item() == pytest.approx(sum(pos) / len(pos) + sum(neg) / len(neg), rel=1e-9)


def test_multi_view_distance_outside_a_step_and_on_foreign_embeddings():
    x = embeddings()
    distance = MeanOverViews(LpDistance(), role="metric_loss")
    assert torch.equal(distance(x), LpDistance()(x))
    inputs = LossInputs(embeddings=x, labels=LABELS).with_views(torch.stack([x + 1, x]))
    with bound_loss_inputs(inputs):
        assert torch.allclose(distance(inputs.embeddings), (LpDistance()(x + 1) + LpDistance()(x)) / 2)
        with pytest.raises(ConfigError, match="loss_funcs.metric_loss"):
            distance(x.clone())
    assert torch.equal(distance(x), LpDistance()(x))  # unbound again
    with pytest.raises(ConfigError, match="needs a pytorch-metric-learning distance"):
        MeanOverViews(None)


@pytest.mark.parametrize(
    "distance",
    [
        LpDistance(),
        LpDistance(p=1, power=2),
        LpDistance(normalize_embeddings=False),
        CosineSimilarity(),
        DotProductSimilarity(normalize_embeddings=False),
        SNRDistance(),
    ],
)
def test_per_view_matrices_equal_the_distance_of_each_view(distance):
    views = torch.randn(5, 7, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    matrices = per_view_matrices(distance, views)
    assert matrices.shape == (5, 7, 7)
    for v in range(5):
        # pytorch-metric-learning normalises with the distance's own p-norm
        unit = (
            views[v] / views[v].norm(p=distance.p, dim=1, keepdim=True)
            if distance.normalize_embeddings
            else views[v]
        )
        if isinstance(distance, LpDistance):  # written out: (sum |a - b|^p)^(1/p), to the power
            expected = ((unit[:, None] - unit[None]).abs() ** distance.p).sum(-1) ** (1 / distance.p)
            expected = expected**distance.power
        elif isinstance(distance, DotProductSimilarity):
            expected = unit @ unit.T
        else:  # SNR: var(a - b) / var(a), not batched: called view by view
            expected = torch.var(unit[None] - unit[:, None], dim=-1) / torch.var(unit, dim=1)[:, None]
        assert torch.allclose(matrices[v], expected, atol=1e-12)
    assert torch.equal(per_view_matrices(distance, views[:1])[0], distance(views[0]))


def test_default_plugin_changes_nothing():
    plugin = TrainingPlugin()
    inputs = LossInputs(embeddings=embeddings(), labels=LABELS)
    assert plugin.loss_inputs(inputs, None) is inputs and plugin.make_views(inputs, None) is inputs
    assert plugin.modules() == {} and plugin.eval_similarity() is None and plugin.state_dict() == {}


class Projector(TrainingPlugin):
    """(d) a train-only linear projector of the embeddings, with its own optimizer and warm-up."""

    def __init__(self):
        self.projector = nn.Linear(4, 4)
        self.snapshots = {}

    def modules(self):
        return {"projector": self.projector}

    def loss_inputs(self, inputs, context):
        return LossInputs(
            embeddings=self.projector(inputs.embeddings), labels=inputs.labels, features=inputs.features
        )

    def on_epoch_end(self, epoch, context):
        self.snapshots[epoch] = (
            self.projector.weight.detach().clone(),
            context.models["embedder"].weight.detach().clone(),
        )


def test_plugin_module_has_its_own_optimizer_and_warm_up(tmp_path):
    torch.manual_seed(0)
    data = torch.randn(32, 6)
    labels = torch.arange(32) % 4
    loader = lambda epoch: torch.utils.data.DataLoader(  # noqa: E731
        torch.utils.data.TensorDataset(data, labels),
        batch_size=16,
        shuffle=True,
        generator=torch.Generator().manual_seed(epoch),
        drop_last=True,
    )
    models = {"trunk": nn.Linear(6, 5), "embedder": nn.Linear(5, 4)}
    plugin = Projector()
    initial = plugin.projector.weight.detach().clone()
    config = {
        "optimizers": {
            "trunk_optimizer": {"SGD": {"lr": 0.1}},
            "embedder_optimizer": {"SGD": {"lr": 0.1}},
            "projector_optimizer": {"SGD": {"lr": 0.5}},
        },
        "frozen_for_epochs": {"projector": 1},
    }
    parts = build_optimization({**models, **plugin.modules()}, config)
    assert parts["projector"].optimizer.param_groups[0]["lr"] == 0.5
    trainer = Trainer(
        models,
        {"metric_loss": ContrastiveLoss()},
        {},
        [plugin],
        parts,
        loader,
        lambda current, epoch: {"mean_average_precision_at_r": float(epoch)},
        settings(num_epochs=2, iterations_per_epoch=2),
        tmp_path / "checkpoints",
    )
    embedder_start = models["embedder"].weight.detach().clone()
    trainer.train()
    projector_1, embedder_1 = plugin.snapshots[1]
    projector_2, _ = plugin.snapshots[2]
    assert torch.equal(projector_1, initial)  # frozen in its warm-up epoch
    assert not torch.equal(embedder_1, embedder_start)  # while the rest trained
    assert not torch.equal(projector_2, initial)  # then trained
    assert all(math.isfinite(v) for v in projector_2.flatten().tolist())


class NormPenalty(TrainingPlugin):
    def __init__(self, name="norm_reg", weight=0.5):
        self.name, self.weight = name, weight

    def loss_terms(self, inputs, context):
        return {self.name: self.weight * inputs.embeddings.pow(2).sum(dim=1).mean()}


def test_loss_terms_are_added_with_the_inputs_the_losses_saw(tmp_path):
    x = embeddings(3)
    trainer = step_trainer(tmp_path, {"metric_loss": ContrastiveLoss()}, [Doubler(), NormPenalty()])
    losses = trainer.compute_losses(LossInputs(embeddings=x, labels=LABELS))
    assert set(losses) == {"metric_loss", "norm_reg"}
    # independent: Doubler appends a copy, so the term sees 12 rows whose squared norms repeat
    expected = 0.5 * sum(float((row**2).sum()) for row in x) / len(x)
    assert losses["norm_reg"].item() == pytest.approx(expected, rel=1e-12)


def test_loss_term_name_clash_is_an_error(tmp_path):
    trainer = step_trainer(tmp_path, {"metric_loss": ContrastiveLoss()}, [NormPenalty(name="metric_loss")])
    with pytest.raises(ValueError, match="already used by a loss"):
        trainer.compute_losses(LossInputs(embeddings=embeddings(), labels=LABELS))


def test_run_losses_mines_the_miner_input_weights_each_loss_and_binds_the_inputs(tmp_path):
    """Hand-worked: loss a = sum of the embeddings, loss b = 10 * their count; weights 0.5 and (absent) 1."""
    x, clean = embeddings(1), embeddings(2)
    seen = {}

    def miner(mined, labels):
        seen["mined"] = mined
        return "tuples"

    class Recording(nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value = value

        def forward(self, embeddings, labels, indices_tuple):
            seen.setdefault("tuples", []).append(indices_tuple)
            seen.setdefault("bound", []).append(_bound_inputs.get())
            return self.value(embeddings)

    losses = {"a": Recording(lambda e: e.sum()), "b": Recording(lambda e: torch.tensor(10.0 * len(e)))}
    trainer = step_trainer(tmp_path, losses, [], miners={"tuple_miner": miner})
    trainer.settings.loss_weights = {"a": 0.5}
    inputs = LossInputs(embeddings=x, labels=LABELS, mining_embeddings=clean)
    got = trainer.run_losses(inputs)
    assert set(got) == {"a", "b"}
    assert got["a"].item() == pytest.approx(0.5 * float(x.sum()))
    assert got["b"].item() == 60.0
    assert seen["mined"] is clean  # mining_embeddings, not the embeddings
    assert seen["tuples"] == ["tuples", "tuples"] and inputs.indices_tuple == "tuples"
    assert seen["bound"] == [inputs, inputs] and _bound_inputs.get() is None  # bound only during the losses


def test_the_trainer_is_the_step_context_every_hook_receives(tmp_path):
    contexts = []

    class Seer(TrainingPlugin):
        def setup(self, context):
            contexts.append(context)

        def loss_terms(self, inputs, context):
            contexts.append(context)
            return {}

    trainer = step_trainer(tmp_path, {"metric_loss": ContrastiveLoss()}, [Seer()])
    trainer.compute_losses(LossInputs(embeddings=embeddings(), labels=LABELS))
    assert contexts == [trainer, trainer]
    assert isinstance(trainer, StepContext)
    assert not isinstance(object(), StepContext)
