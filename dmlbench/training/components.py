"""Build the training components named in the config: losses, miners, the batch sampler,
optimizers, learning-rate schedulers and gradient clippers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from dmlbench.errors import ConfigError
from dmlbench.registry import build

SCHEDULER_SUFFIXES = ("_scheduler_by_iteration", "_scheduler_by_epoch", "_scheduler_by_plateau")


def build_with_context(kind: str, spec: Any, role: str, context: dict[str, Any]) -> Any:
    """Build ``spec``, filling the constructor arguments it accepts from ``context`` (e.g.
    ``num_classes`` and ``embedding_size`` for proxy losses and their regularizers) unless the
    config sets them."""
    return build(kind, spec, role=role, context=context)


def build_losses(config: dict[str, Any], context: dict[str, Any]) -> dict[str, nn.Module]:
    specs = config.get("loss_funcs") or {}
    if not specs and not config.get("training_plugins"):  # a plugin may bring all terms (loss_terms)
        raise ConfigError(
            "loss_funcs: at least one loss is required, e.g. {metric_loss: {ContrastiveLoss: {}}}"
        )
    return {
        role: build_with_context("loss", spec, f"loss_funcs.{role}", context) for role, spec in specs.items()
    }


def build_miners(config: dict[str, Any]) -> dict[str, Any]:
    specs = config.get("mining_funcs") or {}
    return {role: build("miner", spec, role=f"mining_funcs.{role}") for role, spec in specs.items()}


def build_sampler(
    spec: Any, labels: np.ndarray, batch_size: int, iterations_per_epoch: int, dataset: Any
) -> Any:
    """The batch sampler; an epoch is ``iterations_per_epoch`` batches of ``batch_size``."""
    context = {
        "labels": labels,
        "batch_size": batch_size,
        "length_before_new_iter": batch_size * iterations_per_epoch,
        "data_source": dataset,
        "num_samples": batch_size * iterations_per_epoch,
        "replacement": True,
    }
    try:
        return build_with_context("sampler", spec, "sampler", context)
    except ConfigError as error:
        raise ConfigError(
            f"{error} (the training split has {len(labels)} samples in {len(np.unique(labels))} classes)"
        ) from error


@dataclass
class OptimizationPart:
    """One trained part (a model, a loss with parameters, a plugin module) and how it is updated."""

    name: str
    module: nn.Module
    optimizer: torch.optim.Optimizer
    schedulers: dict[str, Any] = field(default_factory=dict)  # "iteration" | "epoch" | "plateau"
    clip: dict[str, Any] | None = None
    frozen_for_epochs: int = 0
    restart_at_epoch: int | None = None  # the optimizer's state is cleared when this epoch starts
    epoch_schedulers_wait: int = 0  # the per-epoch scheduler does not step after epochs <= this


def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def build_optimization(modules: dict[str, nn.Module], config: dict[str, Any]) -> dict[str, OptimizationPart]:
    """An optimizer for every module with trainable parameters, from ``optimizers.<name>_optimizer``.

    A module with trainable parameters but no optimizer is an error (its parameters would silently
    stay at their initial values), and so is an optimizer for an unknown part.
    ``restart_optimizers_after_warmup: true`` clears every optimizer's state (momentum) when the
    epoch after the longest ``frozen_for_epochs`` starts; ``lr_schedulers_wait_for_warmup: true``
    keeps the per-epoch schedulers still during those warm-up epochs.
    """
    optimizer_specs = dict(config.get("optimizers") or {})
    scheduler_specs = dict(config.get("lr_schedulers") or {})
    clipper_specs = dict(config.get("gradient_clippers") or {})
    frozen = dict(config.get("frozen_for_epochs") or {})
    warmup = max([int(epochs) for epochs in frozen.values()] + [0])
    for key in ("restart_optimizers_after_warmup", "lr_schedulers_wait_for_warmup"):
        if config.get(key) and warmup == 0:
            raise ConfigError(f"{key}: true needs a warm-up, e.g. frozen_for_epochs: {{trunk: 1}}")
    restart_at = warmup + 1 if config.get("restart_optimizers_after_warmup") else None
    schedulers_wait = warmup if config.get("lr_schedulers_wait_for_warmup") else 0
    known = set(modules)
    for key in optimizer_specs:
        if not key.endswith("_optimizer") or key[: -len("_optimizer")] not in known:
            raise ConfigError(
                f"optimizers.{key}: no trained part of that name; parts: {', '.join(sorted(f'{m}_optimizer' for m in known))}"
            )
    parts: dict[str, OptimizationPart] = {}
    for name, module in modules.items():
        params = trainable_parameters(module)
        spec = optimizer_specs.get(f"{name}_optimizer")
        if not params:
            continue
        if spec is None:
            raise ConfigError(
                f"{name} has trainable parameters but no optimizer: add "
                f"--optimizers {{{name}_optimizer: {{Adam: {{lr: 0.0001}}}}}} (or freeze it)"
            )
        optimizer = build("optimizer", spec, role=f"optimizers.{name}_optimizer", params=params)
        part = OptimizationPart(
            name,
            module,
            optimizer,
            frozen_for_epochs=int(frozen.get(name, 0)),
            restart_at_epoch=restart_at,
            epoch_schedulers_wait=schedulers_wait,
        )
        for suffix in SCHEDULER_SUFFIXES:
            key = f"{name}{suffix}"
            if key in scheduler_specs:
                part.schedulers[suffix.rsplit("_", 1)[-1]] = build(
                    "lr_scheduler", scheduler_specs.pop(key), role=f"lr_schedulers.{key}", optimizer=optimizer
                )
        clip = clipper_specs.pop(f"{name}_grad_clipper", None)
        if clip is not None:
            if not isinstance(clip, dict) or "max_norm" not in clip:
                raise ConfigError(
                    f"gradient_clippers.{name}_grad_clipper: expected {{max_norm: <float>, norm_type: 2}}"
                )
            part.clip = {"max_norm": float(clip["max_norm"]), "norm_type": float(clip.get("norm_type", 2.0))}
        parts[name] = part
    for leftover, where in ((scheduler_specs, "lr_schedulers"), (clipper_specs, "gradient_clippers")):
        for key in leftover:
            raise ConfigError(
                f"{where}.{key}: no optimized part of that name (valid: "
                f"<part>{'|'.join(SCHEDULER_SUFFIXES) if where == 'lr_schedulers' else '_grad_clipper'} "
                f"with part in {', '.join(sorted(parts))})"
            )
    for name in frozen:
        if name not in known:
            raise ConfigError(
                f"frozen_for_epochs.{name}: no trained part of that name; parts: {', '.join(sorted(known))}"
            )
    return parts
