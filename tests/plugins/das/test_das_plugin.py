"""The DAS plugin in the training step: what the losses and miners see, the auxiliary term,
proxy-based losses, miners, composition with SDM, and the registry."""

from __future__ import annotations

import copy

import pytest
import torch
from das_reference import NaiveDAS
from pytorch_metric_learning.losses import MultiSimilarityLoss, NormalizedSoftmaxLoss, ProxyAnchorLoss
from pytorch_metric_learning.miners import MultiSimilarityMiner

from dmlbench.plugins.das import DAS
from dmlbench.plugins.sdm import SDM
from dmlbench.registry import build
from dmlbench.training.plugins import LossInputs
from dmlbench.training.trainer import Trainer, TrainerSettings

C, D = 4, 8
LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 0])
OPTIONS = {
    "dfs_num_scale": 3,
    "dfs_scale_range": [0.5, 2.0],
    "mts_scale": 0.1,
    "bank_size": 5,
    "num_produce": 3,
    "seed": 5,
}


def trainer_with(tmp_path, losses, plugins, miners=None, loss_weights=None) -> Trainer:
    settings = TrainerSettings(
        num_epochs=1,
        iterations_per_epoch=1,
        save_interval=1,
        patience=1,
        device=torch.device("cpu"),
        seed=0,
        loss_weights=loss_weights or {},
    )
    return Trainer(
        {},
        losses,
        miners or {},
        plugins,
        {},
        lambda epoch: None,
        lambda models, epoch: {},
        settings,
        tmp_path / "checkpoints",
    )


def embeddings(seed=0):
    return torch.randn(len(LABELS), D, generator=torch.Generator().manual_seed(seed))


def expected_batch(e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[e, e'_1, e'_2, e'_3] and the tiled labels, the copies from the naive reference."""
    reference = NaiveDAS(C, D, 3, 5, (0.5, 2.0), 0.1, num_produce=3, seed=5)
    copies = reference.step(e, LABELS)
    produced = torch.tensor([row for copy in copies for row in copy], dtype=e.dtype)
    return torch.cat([e, produced]), LABELS.repeat(4)


def test_the_loss_sees_the_batch_and_its_produced_anchors(tmp_path):
    e = embeddings()
    loss = MultiSimilarityLoss(alpha=2, beta=40, base=0.5)
    trainer = trainer_with(tmp_path, {"metric_loss": loss}, [DAS(num_classes=C, embedding_size=D, **OPTIONS)])
    got = trainer.compute_losses(LossInputs(e, LABELS))
    all_embeddings, all_labels = expected_batch(e)
    assert got["metric_loss"].item() == pytest.approx(loss(all_embeddings, all_labels).item(), abs=1e-5)
    assert set(got) == {"metric_loss"}


def test_original_loss_weight_adds_the_loss_of_the_original_batch(tmp_path):
    """Official --aux_loss --aux_loss_weight a: L(e) + a L(all) = original_loss_weight 1, loss weight a."""
    e = embeddings(1)
    loss = MultiSimilarityLoss(alpha=2, beta=40, base=0.5)
    miner = MultiSimilarityMiner(epsilon=0.1)
    plugin = DAS(num_classes=C, embedding_size=D, original_loss_weight=1.0, **OPTIONS)
    trainer = trainer_with(
        tmp_path, {"metric_loss": loss}, [plugin], {"tuple_miner": miner}, loss_weights={"metric_loss": 0.5}
    )
    got = trainer.compute_losses(LossInputs(e, LABELS))
    all_embeddings, all_labels = expected_batch(e)
    on_all = loss(all_embeddings, all_labels, miner(all_embeddings, all_labels))
    on_original = loss(e, LABELS, miner(e, LABELS))
    assert got["metric_loss"].item() == pytest.approx(0.5 * on_all.item(), abs=1e-5)
    assert got["das_original"].item() == pytest.approx(
        0.5 * on_original.item(), abs=1e-6
    )  # its loss weight too


def test_the_original_term_is_the_step_contexts_losses_on_the_original_batch():
    """DAS needs nothing of the trainer but the step context: its term is w * sum of run_losses(original)."""
    calls = []

    class Context:  # a fake step context: run_losses returns fixed values, records what it got
        settings = TrainerSettings(1, 1, 1, 1, torch.device("cpu"), seed=0)

        def run_losses(self, inputs):
            calls.append(inputs)
            return {"a": torch.tensor(2.0), "b": torch.tensor(3.0)}

    plugin = DAS(num_classes=C, embedding_size=D, original_loss_weight=0.25, **OPTIONS)
    context = Context()
    plugin.setup(context)
    e = embeddings(6)
    extended = plugin.loss_inputs(LossInputs(e, LABELS), context)
    extended.mining_embeddings, extended.indices_tuple = torch.zeros(4 * len(LABELS), D), "mined on all"
    terms = plugin.loss_terms(extended, context)
    assert list(terms) == ["das_original"] and terms["das_original"].item() == 0.25 * 5.0
    (original,) = calls
    assert torch.equal(original.embeddings, e) and torch.equal(original.labels, LABELS)
    assert original.mining_embeddings is None and original.indices_tuple is None and original.views is None


@pytest.mark.parametrize(
    "make_loss",
    [
        lambda: ProxyAnchorLoss(num_classes=C, embedding_size=D),
        lambda: NormalizedSoftmaxLoss(num_classes=C, embedding_size=D, temperature=0.05),
    ],
)
def test_proxy_based_losses_see_the_produced_anchors_as_extra_samples(tmp_path, make_loss):
    """Proxy losses compare each sample with the class proxies; the produced anchors are more samples."""
    torch.manual_seed(0)
    loss = make_loss()
    independent = copy.deepcopy(loss)
    e = embeddings(2).requires_grad_(True)
    trainer = trainer_with(tmp_path, {"metric_loss": loss}, [DAS(num_classes=C, embedding_size=D, **OPTIONS)])
    got = trainer.compute_losses(LossInputs(e, LABELS))["metric_loss"]
    all_embeddings, all_labels = expected_batch(e.detach())
    assert got.item() == pytest.approx(independent(all_embeddings, all_labels).item(), abs=1e-5)
    got.backward()
    assert e.grad is not None and e.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.parameters())  # proxies learn


def test_the_miner_mines_the_produced_anchors_too(tmp_path):
    e = embeddings(3)
    seen = {}

    class Recording(MultiSimilarityMiner):
        def forward(self, embeddings, labels, *args, **kwargs):
            seen["tuple"] = super().forward(embeddings, labels, *args, **kwargs)
            return seen["tuple"]

    trainer = trainer_with(
        tmp_path,
        {"metric_loss": MultiSimilarityLoss()},
        [DAS(num_classes=C, embedding_size=D, **OPTIONS)],
        {"tuple_miner": Recording(epsilon=0.5)},
    )
    trainer.compute_losses(LossInputs(e, LABELS))
    all_embeddings, all_labels = expected_batch(e)
    wanted = MultiSimilarityMiner(epsilon=0.5)(all_embeddings, all_labels)
    assert all(torch.equal(a, b) for a, b in zip(seen["tuple"], wanted))
    assert int(seen["tuple"][0].max()) >= len(LABELS)  # anchors among the produced samples


@pytest.mark.parametrize("order", ["DAS first", "SDM first"])
def test_sdm_makes_dropout_views_of_the_produced_anchors_in_either_order(tmp_path, order):
    views_seen = {}

    class Spy(MultiSimilarityLoss):
        def forward(self, embeddings, labels, *args, **kwargs):
            views_seen.setdefault("n", len(labels))  # the first call: the configured loss
            return super().forward(embeddings, labels, *args, **kwargs)

    das, sdm = DAS(num_classes=C, embedding_size=D, original_loss_weight=1.0, **OPTIONS), SDM(num_views=6)
    plugins = [das, sdm] if order == "DAS first" else [sdm, das]
    trainer = trainer_with(tmp_path, {"metric_loss": Spy()}, plugins)
    original_make_views = sdm.make_views

    def recording_make_views(inputs, context):
        out = original_make_views(inputs, context)
        views_seen["shape"] = tuple(out.views.shape)
        return out

    sdm.make_views = recording_make_views
    e = embeddings(4).requires_grad_(True)
    losses = trainer.compute_losses(LossInputs(e, LABELS))
    assert views_seen["shape"] == (6, 4 * len(LABELS), D) and views_seen["n"] == 4 * len(LABELS)
    assert torch.isfinite(losses["metric_loss"]) and torch.isfinite(losses["das_original"])
    sum(losses.values()).backward()
    assert e.grad.abs().sum() > 0


def test_built_from_config_through_the_registry():
    plugin = build(
        "training_plugin",
        {"DAS": {"dfs_num_scale": 8, "dfs_scale_range": [0.99, 1.01], "mts_scale": 0.01, "detach": True}},
        role="training_plugins.DAS",
        context={"num_classes": 10, "embedding_size": 16},
    )
    assert isinstance(plugin, DAS) and plugin.dfs_num_scale == 8 and plugin.detach


def test_the_checkpoint_holds_the_state_and_the_generator(tmp_path):
    plugin = DAS(num_classes=C, embedding_size=D, **OPTIONS)
    trainer = trainer_with(tmp_path, {"metric_loss": MultiSimilarityLoss()}, [plugin])
    trainer.compute_losses(LossInputs(embeddings(5), LABELS))
    trainer.save_latest()
    saved = torch.load(trainer.latest_path, weights_only=False)["plugins"][0]
    assert set(saved) == {"frequency", "banks", "pointer", "filled", "generator"}
    assert int(saved["frequency"].sum()) == 3 * len(LABELS)
    assert saved["filled"].tolist() == [5, 2, 2, 0]  # class 0: 3 samples -> 6 > 5 differences
