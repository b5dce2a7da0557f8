"""The AVSL and Proxy-Anchor recipes' warm-up and learning-rate schedule against GeDML's loop.

The AVSL release runs GeDML 0.2.2's ``BaseManager.run`` (gedml/launcher/managers/base_manager.py):
``self.epochs`` starts at -1 and is incremented before each of ``total_epochs = 61`` epochs; while
``epochs < warm_up`` (5) only the optimizers of ``--warm_up_list embedder collector`` step, and
``BaseTrainer.step_schedulers`` (gedml/launcher/trainers/base_trainer.py) does nothing in warm-up
mode, so every StepLR counts the full epochs only. :func:`official_trace` writes that out; the
recipes, resolved as ``run.py --reproduce_results`` resolves them, run through the real trainer's
epoch loop (its step replaced by a recorder) and the learning rate of every epoch is compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from dmlbench.cli import build_parser, reproduced_configs
from dmlbench.training.components import build_optimization
from dmlbench.training.trainer import Trainer, TrainerSettings

EXP_CONFIGS = Path(__file__).resolve().parents[3] / "exp_configs"
#: samples_avsl.sh / samples_baseline.sh: (--lr_trunk, --lr_embedder, --lr_collector, --step, --gamma)
OFFICIAL = {
    "cub_avsl": (1e-5, 5.5e-4, 1.1e-4, 10, 0.5),
    "car_avsl": (0.00025230934618157737, 0.00016294139202611374, 0.09918213648327627, 5, 0.5),
    "sop_avsl": (6e-4, 6e-4, 0.06, 15, 0.25),
    "cub_proxyanchor": (1e-4, 1e-4, 1e-2, 5, 0.5),
    "car_proxyanchor": (1e-4, 1e-4, 1e-2, 10, 0.5),
    "sop_proxyanchor": (6e-4, 6e-4, 0.06, 15, 0.25),
}
NAMES = sorted([*OFFICIAL, *(f"{name}_mlrc" for name in OFFICIAL)])


def official_trace(
    lrs: tuple[float, float, float], step: int, gamma: float, total_epochs: int = 61, warm_up: int = 5
):
    """Per epoch: the lr of (trunk, embedder, collector), None where that optimizer does not step."""
    current = list(lrs)
    steps_taken = 0
    rows = []
    epochs = -1
    for _ in range(total_epochs):
        epochs += 1
        warming = epochs < warm_up
        rows.append((None if warming else current[0], current[1], current[2]))
        if not warming:  # StepLR.step(): lr = base * gamma ** (last_epoch // step_size)
            steps_taken += 1
            current = [base * gamma ** (steps_taken // step) for base in lrs]
    return rows


def resolved(name: str) -> dict[str, Any]:
    args, _ = build_parser().parse_known_args(["--reproduce_results", str(EXP_CONFIGS / name)])
    merged: dict[str, Any] = {}
    for values in reproduced_configs(args).values():
        merged.update(values)
    return merged


@pytest.mark.parametrize("name", NAMES)
def test_learning_rate_per_epoch_is_gedmls(name: str, tmp_path: Path) -> None:
    config = resolved(name)
    third = "collector" if "avsl" in name else "metric_loss"  # AVSL's plugin module / the proxies
    modules = {"trunk": nn.Linear(2, 2), "embedder": nn.Linear(2, 2), third: nn.Linear(2, 2)}
    parts = build_optimization(modules, config)
    settings = TrainerSettings(
        num_epochs=config["num_epochs_train"],
        iterations_per_epoch=1,
        save_interval=config["num_epochs_train"],
        patience=config["num_epochs_train"],
        device=torch.device("cpu"),
        seed=0,
    )
    data = torch.utils.data.TensorDataset(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))
    trainer = Trainer(
        {"trunk": modules["trunk"], "embedder": modules["embedder"]},
        {},
        {},
        [],
        parts,
        lambda epoch: torch.utils.data.DataLoader(data, batch_size=2),
        lambda models, epoch: {},
        settings,
        tmp_path,
    )
    seen: list[tuple[float | None, ...]] = []

    def record(images, labels, frozen):
        seen.append(
            tuple(
                None if parts[p] in frozen else parts[p].optimizer.param_groups[0]["lr"]
                for p in ("trunk", "embedder", third)
            )
        )
        return {"total": torch.zeros(())}

    trainer._step = record
    trainer.train()
    lrs, step, gamma = OFFICIAL[name.removesuffix("_mlrc")][:3], *OFFICIAL[name.removesuffix("_mlrc")][3:]
    expected = official_trace(lrs, step, gamma)
    assert len(seen) == len(expected) == 61
    for epoch, (got, want) in enumerate(zip(seen, expected), start=1):
        assert [g is None for g in got] == [w is None for w in want], f"epoch {epoch}"
        for g, w in zip(got, want):
            if w is not None:
                assert g == pytest.approx(w, rel=1e-12), f"epoch {epoch}: {got} != {want}"


def test_a_frozen_trunk_still_updates_batchnorm_statistics_unless_they_are_frozen(tmp_path: Path) -> None:
    """GeDML puts every model in train mode in warm-up too (BaseTrainer.set_to_train), so a trunk
    whose BatchNorm is not frozen (SOP: --not_freeze_bn) updates its running statistics while its
    weights wait; the trainer does the same."""
    from pytorch_metric_learning.losses import ContrastiveLoss

    data = torch.utils.data.TensorDataset(torch.randn(8, 3) + 2, torch.arange(8) % 2)
    for freeze, changes in ((False, True), (True, False)):
        torch.manual_seed(0)
        trunk = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
        modules = {"trunk": trunk, "embedder": nn.Linear(4, 2)}
        config = {
            "optimizers": {
                "trunk_optimizer": {"SGD": {"lr": 0.1}},
                "embedder_optimizer": {"SGD": {"lr": 0.1}},
            },
            "frozen_for_epochs": {"trunk": 1},
        }
        parts = build_optimization(modules, config)
        settings = TrainerSettings(
            num_epochs=1,
            iterations_per_epoch=2,
            save_interval=1,
            patience=1,
            device=torch.device("cpu"),
            seed=0,
            freeze_trunk_batchnorm=freeze,
        )
        trainer = Trainer(
            modules,
            {"metric_loss": ContrastiveLoss()},
            {},
            [],
            parts,
            lambda epoch: torch.utils.data.DataLoader(data, batch_size=4),
            lambda models, epoch: {},
            settings,
            tmp_path / str(freeze),
        )
        weight = trunk[0].weight.detach().clone()
        trainer.train()
        assert torch.equal(trunk[0].weight, weight)  # frozen in warm-up
        moved = not torch.equal(trunk[1].running_mean, torch.zeros(4))
        assert moved == changes
