"""The fold loop: model selection, early stopping, exact resume, warm-up freezing, clipping."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from pytorch_metric_learning.losses import ContrastiveLoss
from torch import nn

from dmlbench.training.components import build_optimization
from dmlbench.training.trainer import Trainer, TrainerSettings


class TensorTrunk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 8)
        self.bn = nn.BatchNorm1d(8)
        self.num_features = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(x))


def make_loader_factory(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    data = torch.randn(64, 6, generator=generator)
    labels = torch.arange(64) % 8

    def factory(epoch: int):
        dataset = torch.utils.data.TensorDataset(data, labels)
        g = torch.Generator().manual_seed(epoch)
        return torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=True, generator=g, drop_last=True)

    return factory


def make_trainer(tmp_path: Path, scores=None, config_extra=None, **settings_kw) -> Trainer:
    torch.manual_seed(0)
    models = {"trunk": TensorTrunk(), "embedder": nn.Linear(8, 4)}
    config = {
        "optimizers": {"trunk_optimizer": {"SGD": {"lr": 0.1}}, "embedder_optimizer": {"SGD": {"lr": 0.1}}}
    }
    config.update(config_extra or {})
    parts = build_optimization(models, config)
    calls = []

    def validator(current, epoch):
        calls.append(epoch)
        value = (
            scores[len(calls) - 1] if scores is not None else float(current["embedder"].weight.detach().sum())
        )
        return {"mean_average_precision_at_r": value}

    defaults = dict(
        num_epochs=6,
        iterations_per_epoch=3,
        save_interval=1,
        patience=100,
        device=torch.device("cpu"),
        seed=1,
    )
    defaults.update(settings_kw)
    trainer = Trainer(
        models,
        {"metric_loss": ContrastiveLoss()},
        {},
        [],
        parts,
        make_loader_factory(),
        validator,
        TrainerSettings(**defaults),
        tmp_path / "checkpoints",
    )
    trainer.validation_calls = calls
    return trainer


def test_early_stopping_and_best_epoch(tmp_path):
    # validation at epochs 0,1,2,...: best at epoch 2, patience 2 -> stop at epoch 5 (5 - 2 > 2)
    scores = [0.1, 0.2, 0.5, 0.4, 0.3, 0.3, 0.3]
    trainer = make_trainer(tmp_path, scores=scores, num_epochs=10, patience=2)
    state = trainer.train()
    assert trainer.validation_calls == [0, 1, 2, 3, 4, 5]
    assert state.best_epoch == 2 and state.best_score == pytest.approx(0.5)
    assert state.epoch == 5 and state.finished and "early stop" in state.stop_reason
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=False)
    assert best["epoch"] == 2


def test_validation_every_save_interval(tmp_path):
    trainer = make_trainer(tmp_path, scores=[0.0] * 10, num_epochs=7, save_interval=3, patience=100)
    trainer.train()
    assert trainer.validation_calls == [0, 3, 6, 7]  # the last epoch is always validated


def test_resume_reproduces_uninterrupted_run(tmp_path):
    straight = make_trainer(tmp_path / "a", num_epochs=4)
    straight.train()

    first = make_trainer(tmp_path / "b", num_epochs=2)
    first.train()
    resumed = make_trainer(tmp_path / "b", num_epochs=4)
    assert resumed.resume()
    assert resumed.state.epoch == 2
    resumed.state.finished = False  # the first run stopped at its own num_epochs
    resumed.train()
    for name in ("trunk", "embedder"):
        for (key, a), b in zip(
            straight.models[name].state_dict().items(), resumed.models[name].state_dict().values()
        ):
            assert torch.equal(a, b), f"{name}.{key} differs after resume"


def test_frozen_for_epochs_keeps_part_fixed(tmp_path):
    trainer = make_trainer(tmp_path, config_extra={"frozen_for_epochs": {"trunk": 2}}, num_epochs=3)
    before = copy.deepcopy(trainer.models["trunk"].linear.weight.detach())
    embedder_before = copy.deepcopy(trainer.models["embedder"].weight.detach())
    trainer._train_epoch(1)
    trainer._train_epoch(2)
    assert torch.equal(trainer.models["trunk"].linear.weight, before)
    assert not torch.equal(trainer.models["embedder"].weight, embedder_before)
    trainer._train_epoch(3)
    assert not torch.equal(trainer.models["trunk"].linear.weight, before)
    assert trainer.models["trunk"].linear.weight.requires_grad


def test_gradient_clipping_bounds_the_update(tmp_path):
    # With SGD lr 0.1 and the gradient norm clipped to 1e-3, one step moves the embedder's
    # parameters by at most 0.1 * 1e-3 in norm.
    trainer = make_trainer(
        tmp_path,
        config_extra={"gradient_clippers": {"embedder_grad_clipper": {"max_norm": 1e-3}}},
        iterations_per_epoch=1,
    )
    before = [p.detach().clone() for p in trainer.models["embedder"].parameters()]
    trainer._train_epoch(1)
    after = list(trainer.models["embedder"].parameters())
    step = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(after, before)))
    assert 0 < float(step.detach()) <= 0.1 * 1e-3 * (1 + 1e-5)


def test_epoch_scheduler_steps_once_per_epoch(tmp_path):
    trainer = make_trainer(
        tmp_path,
        config_extra={
            "lr_schedulers": {"embedder_scheduler_by_epoch": {"StepLR": {"step_size": 1, "gamma": 0.5}}}
        },
        num_epochs=3,
        iterations_per_epoch=2,
    )
    trainer.train()
    assert trainer.parts["embedder"].optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    assert trainer.parts["trunk"].optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_frozen_batchnorm_statistics(tmp_path):
    """freeze_trunk_batchnorm freezes the running statistics only: the affine parameters still train."""
    trainer = make_trainer(tmp_path, freeze_trunk_batchnorm=True, num_epochs=1)
    bn = trainer.models["trunk"].bn
    before, weight = bn.running_mean.clone(), bn.weight.detach().clone()
    trainer._train_epoch(1)
    assert torch.equal(bn.running_mean, before)
    assert bn.weight.requires_grad and not torch.equal(bn.weight.detach(), weight)


def test_epoch_scheduler_counts_frozen_epochs_too(tmp_path):
    # A by-epoch schedule follows the epoch count: the trunk, frozen for its first epoch, still
    # decays after epoch 2 like every other part.
    trainer = make_trainer(
        tmp_path,
        config_extra={
            "frozen_for_epochs": {"trunk": 1},
            "lr_schedulers": {"trunk_scheduler_by_epoch": {"StepLR": {"step_size": 2, "gamma": 0.1}}},
        },
        num_epochs=2,
        iterations_per_epoch=1,
    )
    trainer.train()
    assert trainer.parts["trunk"].optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.1)
