"""Helpers of the SDM tests: a trainer reduced to its loss step, and naive reference formulas."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from dmlbench.training.trainer import Trainer, TrainerSettings


def loss_step_trainer(tmp_path: Path, losses: dict, plugins: list, miners: dict | None = None) -> Trainer:
    """A Trainer whose compute_losses can be called directly (no models, data or optimizers)."""
    settings = TrainerSettings(
        num_epochs=1, iterations_per_epoch=1, save_interval=1, patience=1, device=torch.device("cpu"), seed=0
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


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def euclidean(a: list[float], b: list[float]) -> float:
    """||a/|a| - b/|b|||, the default LpDistance of pytorch-metric-learning, written out."""
    ua, ub = unit(a), unit(b)
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(ua, ub)))


def cosine(a: list[float], b: list[float]) -> float:
    ua, ub = unit(a), unit(b)
    return sum(x * y for x, y in zip(ua, ub))


def soft_extreme(values: list[float], alpha: float, maximum: bool) -> float:
    """sum_v softmax(+-alpha * x_v) x_v, computed naively (max-shifted for stability)."""
    scaled = [(alpha if maximum else -alpha) * x for x in values]
    top = max(scaled)
    weights = [math.exp(s - top) for s in scaled]
    return sum(w * x for w, x in zip(weights, values)) / sum(weights)
