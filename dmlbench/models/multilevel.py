"""Multi-level trunks: the model extension point for embedders that read several feature maps.

A multi-level trunk returns a :class:`FeatureMaps` (a tuple of maps ``[B, C_l, H_l, W_l]``, from
the lowest level to the highest) instead of one pooled vector, and declares

- ``level_channels``: ``[C_1, ..., C_L]``; the model factory passes it to an embedder whose
  constructor has a ``level_channels`` argument (as it passes ``input_size`` to the others);
- ``num_features``: ``C_L``, the width of :func:`pooled` (the "untrained_trunk" evaluation,
  which has no embedder, ranks by the globally average-pooled last map).

An embedder built for it (e.g. ``dmlbench.plugins.avsl.AVSLEmbedder``) takes the tuple and returns
``[B, D]`` as usual, so the trainer, the evaluation and the ordinary single-output trunks are
unchanged. Config::

    models:
      trunk: {MultiLevelTrunk: {name: resnet50, layers: [layer2, layer3, layer4]}}
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.models.small_cnn import conv_bn_relu
from dmlbench.models.trunks import TorchvisionTrunk
from dmlbench.registry import register

RESNET_STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class FeatureMaps(tuple):
    """The maps of a multi-level trunk, lowest level first (a plain tuple of tensors)."""


def pooled(features: Any) -> Tensor:
    """A trunk output as one vector per sample: a tensor as it is, :class:`FeatureMaps` (or any
    tuple/list of maps) as the global average of its last map ``[B, C_L]``."""
    if isinstance(features, (tuple, list)):
        return features[-1].mean(dim=(2, 3))
    return features


def as_float(features: Any) -> Any:
    """``features`` in float32 (each map of a tuple)."""
    if isinstance(features, (tuple, list)):
        return FeatureMaps(f.float() for f in features)
    return features.float()


@register("model")
class MultiLevelTrunk(nn.Module):
    """A torchvision ResNet (any depth, ResNeXt, Wide ResNet) returning the maps of ``layers``.

    Args:
        name, pretrained, weights_path, frozen_batchnorm: as :class:`TorchvisionTrunk`.
        layers: the stages whose outputs are returned, in network order (default layer2/3/4:
            512/1024/2048 channels on ResNet50, 128/256/512 on ResNet18).
    """

    def __init__(
        self,
        name: str = "resnet50",
        pretrained: bool | str = True,
        layers: list[str] | None = None,
        weights_path: str | None = None,
        frozen_batchnorm: bool = False,
    ) -> None:
        super().__init__()
        layers = list(layers or ["layer2", "layer3", "layer4"])
        base = TorchvisionTrunk(
            name=name, pretrained=pretrained, weights_path=weights_path, frozen_batchnorm=frozen_batchnorm
        )
        stages = dict(base.body.named_children())
        if set(stages) != set(RESNET_STAGES):
            raise ConfigError(
                f"MultiLevelTrunk: {name} is not a ResNet-style network (stages conv1 ... layer4)"
            )
        unknown = [layer for layer in layers if layer not in RESNET_STAGES]
        order = [RESNET_STAGES.index(layer) for layer in layers if layer in RESNET_STAGES]
        if unknown or not layers or order != sorted(set(order)):
            raise ConfigError(
                f"MultiLevelTrunk.layers: expected distinct stages of {', '.join(RESNET_STAGES)} "
                f"in network order, got {layers}"
            )
        self.name = name
        self.layers = layers
        self.body = base.body
        self.input_normalization = base.input_normalization
        self.level_channels = self._measure()
        self.num_features = self.level_channels[-1]

    def _measure(self) -> list[int]:
        was_training = self.training
        self.eval()
        with torch.no_grad():
            maps = self(torch.zeros(1, 3, 64, 64))
        self.train(was_training)
        return [int(m.shape[1]) for m in maps]

    def forward(self, images: Tensor) -> FeatureMaps:
        maps, x = [], images
        for stage_name, stage in self.body.named_children():
            x = stage(x)
            if stage_name in self.layers:
                maps.append(x)
            if stage_name == self.layers[-1]:
                break
        return FeatureMaps(maps)


@register("model")
class MultiLevelSmallConvNet(nn.Module):
    """The demo's small trunk with levels: ``num_blocks`` conv3x3-BN-ReLU blocks (stride 2,
    widths doubling from ``width``), returning the maps of the last ``num_levels`` blocks."""

    def __init__(
        self, width: int = 16, num_blocks: int = 4, num_levels: int = 3, in_channels: int = 3
    ) -> None:
        super().__init__()
        if min(width, num_blocks, num_levels, in_channels) < 1 or num_levels > num_blocks:
            raise ConfigError(
                f"MultiLevelSmallConvNet: need width, num_blocks, num_levels >= 1 and num_levels <= "
                f"num_blocks, got width={width}, num_blocks={num_blocks}, num_levels={num_levels}"
            )
        widths = [width * 2**block for block in range(num_blocks)]
        blocks = []
        for out_channels in widths:
            blocks.append(conv_bn_relu(in_channels, out_channels, stride=2))
            in_channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.num_levels = int(num_levels)
        self.level_channels = widths[-num_levels:]
        self.num_features = widths[-1]

    def forward(self, images: Tensor) -> FeatureMaps:
        maps, x = [], images
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return FeatureMaps(maps[-self.num_levels :])


__all__ = ["FeatureMaps", "MultiLevelSmallConvNet", "MultiLevelTrunk", "as_float", "pooled"]
