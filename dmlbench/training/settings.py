"""The settings of one fold's training loop (:class:`TrainerSettings`), built by ``training/fold.py``
from the resolved config; read by the trainer and, through the step context, by training plugins."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class TrainerSettings:
    num_epochs: int
    iterations_per_epoch: int
    save_interval: int
    patience: int
    device: torch.device
    seed: int
    metric_for_best: str = "mean_average_precision_at_r"
    freeze_trunk_batchnorm: bool = True  # as config_models/default.yaml (MLRC: trunk BatchNorm frozen)
    mixed_precision: str | None = None  # None | "bf16" | "fp16"
    channels_last: bool = False
    loss_weights: dict[str, float] = field(default_factory=dict)
    compile_models: bool | str = (
        False  # torch.compile of the training forward (dmlbench/training/compiled.py)
    )
