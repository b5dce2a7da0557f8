"""The classification recipes' schedule against the official train_classification.py.

The official script (azgo14/classification_metric_learning, metric_learning/train_classification.py,
run with ``--pretrain_epochs 1 --epochs_per_step 15 --num_steps 2``) trains the new parameters
alone for one epoch with one SGD optimizer, then builds a new SGD optimizer over every parameter
and runs ``epochs_per_step * num_steps`` = 30 epochs, calling ``adjust_learning_rate`` before each:
``if epoch != 0 and epoch % epochs_per_step == 0: lr *= gamma``. :func:`official_trace` writes that
logic out; the recipes, resolved as ``run.py --reproduce_results`` resolves them, run through the
real trainer (one step per epoch) and the learning rate of every step is recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from dmlbench.cli import build_parser, reproduced_configs
from dmlbench.errors import ConfigError
from dmlbench.plugins.classification import NormSoftmaxLoss
from dmlbench.training.components import build_optimization
from dmlbench.training.trainer import Trainer, TrainerSettings

EXP_CONFIGS = Path(__file__).resolve().parents[3] / "exp_configs"
#: the official commands (README of azgo14/classification_metric_learning): --lr per data set
OFFICIAL_LR = {"cub": 0.001, "car": 0.01, "sop": 0.01, "inshop": 0.01}


def official_trace(lr: float, pretrain_epochs: int = 1, epochs_per_step: int = 15, num_steps: int = 2):
    """Per epoch: (lr of the backbone or None when it is not trained, lr of the new parameters)."""
    rows: list[tuple[float | None, float]] = [(None, lr * 1)] * pretrain_epochs  # lr_mult 1
    current = lr
    for epoch in range(epochs_per_step * num_steps):
        if epoch != 0 and epoch % epochs_per_step == 0:
            current *= 0.1
        rows.append((current, current))
    return rows


def resolved(name: str) -> dict[str, Any]:
    args, _ = build_parser().parse_known_args(["--reproduce_results", str(EXP_CONFIGS / name)])
    merged: dict[str, Any] = {}
    for values in reproduced_configs(args).values():
        merged.update(values)
    return merged


class Trunk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def make_trainer(tmp_path: Path, config: dict[str, Any], num_epochs: int) -> Trainer:
    torch.manual_seed(0)
    models = {"trunk": Trunk(), "embedder": nn.Identity()}  # 2048-d recipe: the embedder has no weights
    loss = NormSoftmaxLoss(num_classes=4, embedding_size=8)
    parts = build_optimization({**models, "metric_loss": loss}, config)
    data = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(16) % 4

    def loader(epoch: int) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data, labels), batch_size=8)

    settings = TrainerSettings(
        num_epochs=num_epochs,
        iterations_per_epoch=1,
        save_interval=num_epochs,
        patience=num_epochs,
        device=torch.device("cpu"),
        seed=0,
        freeze_trunk_batchnorm=False,
    )
    return Trainer(
        models, {"metric_loss": loss}, {}, [], parts, loader, lambda m, e: {}, settings, tmp_path / "ckpt"
    )


def record_steps(trainer: Trainer) -> list[dict[str, Any]]:
    """Wrap the trainer's step: per step, each part's lr (None when frozen) and optimizer state size."""
    steps: list[dict[str, Any]] = []
    step = trainer._step

    def recording(images, labels, frozen):
        steps.append(
            {
                name: (
                    None if part in frozen else part.optimizer.param_groups[0]["lr"],
                    len(part.optimizer.state),
                )
                for name, part in trainer.parts.items()
            }
        )
        return step(images, labels, frozen)

    trainer._step = recording
    return steps


@pytest.mark.parametrize("dataset", sorted(OFFICIAL_LR))
def test_learning_rate_per_epoch_is_the_official_schedule(dataset: str, tmp_path: Path) -> None:
    config = resolved(f"{dataset}_classification")
    expected = official_trace(OFFICIAL_LR[dataset])
    assert config["num_epochs_train"] == len(expected) == 31
    trainer = make_trainer(tmp_path, config, config["num_epochs_train"])
    steps = record_steps(trainer)
    trainer.train()
    assert len(steps) == len(expected)
    for epoch, (row, (backbone, new)) in enumerate(zip(steps, expected), start=1):
        trunk_lr, loss_lr = row["trunk"][0], row["metric_loss"][0]
        assert (trunk_lr is None) == (backbone is None), f"epoch {epoch}: trunk trained {trunk_lr}"
        if backbone is not None:
            assert trunk_lr == pytest.approx(backbone, rel=1e-12), f"epoch {epoch}"
        assert loss_lr == pytest.approx(new, rel=1e-12), f"epoch {epoch}"


def test_the_full_training_starts_with_a_new_optimizer(tmp_path: Path) -> None:
    """Official: the warm-up's SGD (with its momentum) is replaced by a new one after epoch 1."""
    config = resolved("cub_classification")
    trainer = make_trainer(tmp_path, config, 3)
    steps = record_steps(trainer)
    trainer.train()
    assert steps[0]["metric_loss"][1] == 0  # the first step: nothing yet
    loss_state = trainer.parts["metric_loss"].optimizer.state
    assert all("momentum_buffer" in s for s in loss_state.values())
    assert steps[1]["metric_loss"][1] == 0 and steps[1]["trunk"][1] == 0  # cleared when epoch 2 starts
    assert steps[2]["metric_loss"][1] > 0  # and kept from then on
    # without the option the warm-up's momentum would be carried over
    config["restart_optimizers_after_warmup"] = False
    trainer = make_trainer(tmp_path / "kept", config, 2)
    steps = record_steps(trainer)
    trainer.train()
    assert steps[1]["metric_loss"][1] > 0


@pytest.mark.parametrize("key", ["restart_optimizers_after_warmup", "lr_schedulers_wait_for_warmup"])
def test_warm_up_switches_without_a_warm_up_are_config_errors(key: str) -> None:
    config = {"optimizers": {"trunk_optimizer": {"SGD": {"lr": 0.1}}}, key: True}
    with pytest.raises(ConfigError, match=f"{key}: true needs a warm-up"):
        build_optimization({"trunk": nn.Linear(2, 2)}, config)
