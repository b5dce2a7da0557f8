"""Build the trunk and embedder from ``config_models``."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from dmlbench.errors import ConfigError
from dmlbench.registry import build, lookup, parse_spec, register

IMAGENET_NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def infer_num_features(module: nn.Module, image_size: int = 64) -> int:
    """Width of ``module``'s output, read from ``num_features`` or measured on a dummy image."""
    width = getattr(module, "num_features", None)
    if isinstance(width, int):
        return width
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(2, 3, image_size, image_size))
    module.train(was_training)
    if out.ndim != 2:
        raise ConfigError(
            f"trunk {type(module).__name__} returns shape {tuple(out.shape)}, expected [batch, features]; "
            "use a trunk that pools its output (e.g. TorchvisionTrunk)"
        )
    return int(out.shape[1])


def _build_embedder(spec: Any, input_size: int, trunk: nn.Module | None = None) -> nn.Module:
    name, kwargs = parse_spec(spec, "models.embedder")
    factory = lookup("model", name, "models.embedder")
    parameters = inspect.signature(factory).parameters
    if "input_size" in parameters:
        kwargs.setdefault("input_size", input_size)
    level_channels = getattr(trunk, "level_channels", None)  # a multi-level trunk (models/multilevel.py)
    if "level_channels" in parameters and level_channels is not None:
        kwargs.setdefault("level_channels", list(level_channels))
    return build("model", {name: kwargs}, role="models.embedder")


@register("factory")
class ModelFactory:
    """Trunk + embedder, the MLRC model. Override ``build`` in a plugin for other shapes."""

    def build(self, models_config: dict[str, Any]) -> dict[str, nn.Module]:
        if "trunk" not in models_config:
            raise ConfigError("models: a 'trunk' entry is required")
        trunk = build("model", models_config["trunk"], role="models.trunk")
        num_features = infer_num_features(trunk)
        models = {"trunk": trunk}
        embedder_spec = models_config.get("embedder") or {"IdentityEmbedder": {}}
        models["embedder"] = _build_embedder(embedder_spec, num_features, trunk)
        for name, spec in models_config.items():
            if name not in models:
                models[name] = build("model", spec, role=f"models.{name}")
        return models


def input_normalization(trunk: nn.Module) -> dict[str, Any]:
    """The input convention a trunk expects: ``{"mean", "std"}`` and optionally
    ``"bgr": True, "scale": 255`` (BN-Inception). Trunks declare it as ``input_normalization``."""
    return dict(getattr(trunk, "input_normalization", None) or IMAGENET_NORMALIZATION)
