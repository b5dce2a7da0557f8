"""Image transforms from ``config_transforms``: the configured augmentations, then ToTensor
and the trunk's input normalisation."""

from __future__ import annotations

from typing import Any

import torch
from torchvision import transforms as T

from dmlbench.errors import ConfigError
from dmlbench.registry import build


class ToBGR255:
    """RGB tensor in [0, 1] -> BGR tensor in [0, 255] (BN-Inception's Caffe convention)."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image[[2, 1, 0]] * 255.0

    def __repr__(self) -> str:
        return "ToBGR255()"


def build_transform(spec: dict[str, Any] | None, normalization: dict[str, Any], role: str) -> T.Compose:
    """``{Resize: {size: 256}, CenterCrop: {size: 227}}`` -> Compose([..., ToTensor, (BGR255,) Normalize])."""
    if spec is not None and not isinstance(spec, dict):
        raise ConfigError(f"{role}: expected a mapping of transform names to arguments, got {spec!r}")
    steps = [
        build("transform", {name: kwargs}, role=f"{role}.{name}") for name, kwargs in (spec or {}).items()
    ]
    steps.append(T.ToTensor())
    if normalization.get("bgr") or normalization.get("scale", 1) == 255:
        steps.append(ToBGR255())
    steps.append(T.Normalize(mean=normalization["mean"], std=normalization["std"]))
    return T.Compose(steps)


def build_split_transforms(
    transforms_config: dict[str, Any], normalization: dict[str, Any]
) -> dict[str, T.Compose]:
    """The ``train`` and ``eval`` pipelines."""
    missing = [key for key in ("train", "eval") if key not in transforms_config]
    if missing:
        raise ConfigError(f"transforms: missing {missing[0]!r} (both 'train' and 'eval' are needed)")
    return {
        key: build_transform(transforms_config[key], normalization, f"transforms.{key}")
        for key in ("train", "eval")
    }
