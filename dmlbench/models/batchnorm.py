"""Frozen BatchNorm, the one place that freezes BatchNorm layers, in two strengths:

* :func:`freeze_batchnorm_statistics` -- statistics only: every BatchNorm layer in eval mode, so it
  normalises with its running statistics and does not update them; its affine parameters still
  train. Undone by the next ``train()``, so the trainer calls it after each ``train()`` when
  ``freeze_trunk_batchnorm`` is set (config_models; powerful-benchmarker's
  ``set_layers_to_eval("BatchNorm")``).
* :func:`freeze_batchnorm` -- statistics *and* affine parameters, for good: the trunks'
  ``frozen_batchnorm: true`` (the ImageNet statistics and affine parameters are kept while the rest
  of the network trains: MLRC, DAS, Contextual similarity).

How :func:`freeze_batchnorm` stays frozen: it puts every BatchNorm layer in eval mode, stops the
gradients of its weight and bias, and registers a forward pre-hook that sets the layer back to
eval mode before each of its forward passes. A later ``model.train()`` (which the trainer calls
every epoch) therefore flips the ``training`` flag back on only until the next forward, which
uses the running statistics and updates nothing. The hook is a module-level function, so frozen
models still pickle, deep-copy and save their ``state_dict`` unchanged.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

_FROZEN_FLAG = "_dmlbench_frozen_batchnorm"


def _keep_eval_mode(module: nn.Module, args: Any) -> None:
    """Forward pre-hook: a frozen BatchNorm layer always normalises with its running statistics."""
    module.training = False


def batchnorm_layers(module: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm layer (1d, 2d, 3d, SyncBatchNorm) inside ``module``, itself included."""
    return [layer for layer in module.modules() if isinstance(layer, _BatchNorm)]


def freeze_batchnorm_statistics(module: nn.Module) -> None:
    """Put every BatchNorm layer of ``module`` in eval mode (running statistics used, not updated;
    affine parameters still trained) until the next ``module.train()``."""
    for layer in batchnorm_layers(module):
        layer.eval()


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Freeze every BatchNorm layer inside ``module`` (statistics and affine parameters), robustly
    to later ``train()`` calls; returns ``module``. Calling it twice is harmless."""
    freeze_batchnorm_statistics(module)
    for layer in batchnorm_layers(module):
        for parameter in layer.parameters(recurse=False):
            parameter.requires_grad_(False)
        if not getattr(layer, _FROZEN_FLAG, False):
            layer.register_forward_pre_hook(_keep_eval_mode)
            setattr(layer, _FROZEN_FLAG, True)
    return module


def is_batchnorm_frozen(layer: nn.Module) -> bool:
    """Whether :func:`freeze_batchnorm` was applied to this BatchNorm layer."""
    return bool(getattr(layer, _FROZEN_FLAG, False))
