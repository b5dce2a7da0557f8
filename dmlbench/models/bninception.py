"""BN-Inception (Ioffe & Szegedy, 2015), the trunk of the MLRC protocol.

Layer names and shapes follow the Caffe-converted ImageNet model distributed by Cadene's
``pretrainedmodels`` package (``bninception``), so its weight file ``bn_inception-52deb4733.pth``
loads directly: every convolution ``<name>`` (with bias) is followed by a BatchNorm ``<name>_bn``
and a ReLU, e.g. ``conv1_7x7_s2.weight [64, 3, 7, 7]``, ``inception_3a_1x1_bn.running_mean [64]``.

Architecture: stem conv7x7/2 (64) -> maxpool3/2 -> conv1x1 (64) -> conv3x3 (192) -> maxpool3/2,
then ten inception blocks (table ``BLOCKS``). A regular block concatenates four branches:
1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 3x3 -> 3x3; pool3x3/1 -> 1x1 projection. The two
reduction blocks (3c, 4e) drop the 1x1 and projection branches, use stride 2 in the last 3x3 of
each branch and pass the input through a stride-2 max pool. Pooling layers round up (Caffe's
``ceil_mode``). Output: 1024 channels (7x7 for a 224 or 227 input), globally pooled.

Input convention of the pretrained weights: BGR channel order, 0-255 range, mean
``[104, 117, 128]`` (B, G, R), std 1 -- the trunk's ``input_normalization`` says so and the
transform builder appends ``ToBGR255`` and that ``Normalize`` automatically.

Not reproduced from ``pretrainedmodels``: its BatchNorm momentum (0.9 in some releases, a known
typo) -- PyTorch's default 0.1 is used; the MLRC protocol freezes these layers anyway. The final
7x7 average pool is a global (adaptive) one here, identical for 224/227 inputs and valid for others.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlbench.data.transforms import ToBGR255
from dmlbench.errors import ConfigError
from dmlbench.models.batchnorm import freeze_batchnorm
from dmlbench.models.pooling import build_pooling
from dmlbench.models.trunks import (
    PretrainedWeightsError,
    check_state_dict_fits,
    load_state_dict_file,
    locate_weights,
)
from dmlbench.registry import register

WEIGHTS_FILE = "bn_inception-52deb4733.pth"
WEIGHTS_URL = "http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth"
BNINCEPTION_NORMALIZATION = {"mean": [104.0, 117.0, 128.0], "std": [1.0, 1.0, 1.0], "bgr": True, "scale": 255}

# Configs may name the BGR/0-255 conversion explicitly (the transform builder also adds it).
register("transform", "ToBGR255")(ToBGR255)


class InceptionBlock(NamedTuple):
    """Channel widths of one block; ``one_by_one == 0`` marks a reduction block (stride 2)."""

    name: str
    in_channels: int
    one_by_one: int
    reduce_3x3: int
    out_3x3: int
    reduce_double: int
    out_double: int
    pool: str  # "avg" or "max"
    pool_proj: int  # 0: no projection (reduction blocks pass the pooled input through)

    @property
    def stride(self) -> int:
        return 2 if self.one_by_one == 0 else 1

    @property
    def out_channels(self) -> int:
        passthrough = self.in_channels if self.pool_proj == 0 else self.pool_proj
        return self.one_by_one + self.out_3x3 + self.out_double + passthrough


BLOCKS: tuple[InceptionBlock, ...] = (
    InceptionBlock("3a", 192, 64, 64, 64, 64, 96, "avg", 32),
    InceptionBlock("3b", 256, 64, 64, 96, 64, 96, "avg", 64),
    InceptionBlock("3c", 320, 0, 128, 160, 64, 96, "max", 0),
    InceptionBlock("4a", 576, 224, 64, 96, 96, 128, "avg", 128),
    InceptionBlock("4b", 576, 192, 96, 128, 96, 128, "avg", 128),
    InceptionBlock("4c", 576, 160, 128, 160, 128, 160, "avg", 128),
    InceptionBlock("4d", 608, 96, 128, 192, 160, 192, "avg", 128),
    InceptionBlock("4e", 608, 0, 128, 192, 192, 256, "max", 0),
    InceptionBlock("5a", 1056, 352, 192, 320, 160, 224, "avg", 128),
    InceptionBlock("5b", 1024, 352, 192, 320, 192, 224, "max", 128),
)


@register("model")
class BNInception(nn.Module):
    """BN-Inception trunk: ``[B, 3, H, W]`` (BGR, 0-255, mean-subtracted) -> ``[B, 1024]``.

    Args:
        pretrained: load the ImageNet weights ``bn_inception-52deb4733.pth`` (never downloaded:
            from the torch hub cache or ``weights_path``).
        weights_path: an explicit copy of that file (or of a state dict with the same layout).
        pooling: ``avg`` (MLRC), ``max``, ``avg+max`` (DAS) or ``gem``.
        frozen_batchnorm: freeze every BatchNorm layer (the MLRC protocol does).
        conv1_dropout: p of a ``Dropout2d`` (whole channels) between the first convolution and its
            BatchNorm, active in training only (BatchNorm freezing leaves it on). 0 (default): none,
            as the published model; 0.1: the modified copy vendored in the SDM repository
            (iccv-sources/iccv-SDM, pretrainedmodels/models/bninception.py).
    """

    def __init__(
        self,
        pretrained: bool = True,
        weights_path: str | None = None,
        pooling: str = "avg",
        frozen_batchnorm: bool = False,
        conv1_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0 <= float(conv1_dropout) < 1:
            raise ConfigError(f"BNInception.conv1_dropout: expected 0 <= p < 1, got {conv1_dropout!r}")
        self.conv1_dropout = nn.Dropout2d(float(conv1_dropout)) if conv1_dropout else nn.Identity()
        self._units: dict[str, None] = {}
        self._add_unit("conv1_7x7_s2", 3, 64, kernel=7, stride=2)
        self._add_unit("conv2_3x3_reduce", 64, 64, kernel=1)
        self._add_unit("conv2_3x3", 64, 192, kernel=3)
        for block in BLOCKS:
            prefix = f"inception_{block.name}"
            if block.one_by_one:
                self._add_unit(f"{prefix}_1x1", block.in_channels, block.one_by_one, kernel=1)
            self._add_unit(f"{prefix}_3x3_reduce", block.in_channels, block.reduce_3x3, kernel=1)
            self._add_unit(f"{prefix}_3x3", block.reduce_3x3, block.out_3x3, kernel=3, stride=block.stride)
            self._add_unit(f"{prefix}_double_3x3_reduce", block.in_channels, block.reduce_double, kernel=1)
            self._add_unit(f"{prefix}_double_3x3_1", block.reduce_double, block.out_double, kernel=3)
            self._add_unit(
                f"{prefix}_double_3x3_2", block.out_double, block.out_double, kernel=3, stride=block.stride
            )
            if block.pool_proj:
                self._add_unit(f"{prefix}_pool_proj", block.in_channels, block.pool_proj, kernel=1)
        self.pool = build_pooling(pooling)
        self.num_features = BLOCKS[-1].out_channels
        self.input_normalization = dict(BNINCEPTION_NORMALIZATION)
        if pretrained:
            self.load_published_weights(weights_path)
        elif weights_path is not None:
            raise PretrainedWeightsError("BNInception: weights_path is set but pretrained is false")
        if frozen_batchnorm:
            freeze_batchnorm(self)

    def _add_unit(self, name: str, in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> None:
        """Register conv ``name`` (with bias) and BatchNorm ``name_bn`` as flat attributes."""
        self.add_module(
            name, nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2)
        )
        self.add_module(f"{name}_bn", nn.BatchNorm2d(out_channels, eps=1e-5))
        self._units[name] = None

    def _unit(self, name: str, x: Tensor) -> Tensor:
        """conv -> BatchNorm -> ReLU."""
        return F.relu(getattr(self, f"{name}_bn")(getattr(self, name)(x)), inplace=True)

    def _block(self, block: InceptionBlock, x: Tensor) -> Tensor:
        prefix = f"inception_{block.name}"
        branches = []
        if block.one_by_one:
            branches.append(self._unit(f"{prefix}_1x1", x))
        branches.append(self._unit(f"{prefix}_3x3", self._unit(f"{prefix}_3x3_reduce", x)))
        double = self._unit(f"{prefix}_double_3x3_reduce", x)
        branches.append(self._unit(f"{prefix}_double_3x3_2", self._unit(f"{prefix}_double_3x3_1", double)))
        if block.pool_proj == 0:  # reduction block: stride-2 max pool of the input
            branches.append(F.max_pool2d(x, 3, stride=2, ceil_mode=True))
        else:
            if block.pool == "avg":
                pooled = F.avg_pool2d(x, 3, stride=1, padding=1, ceil_mode=True, count_include_pad=True)
            else:
                pooled = F.max_pool2d(x, 3, stride=1, padding=1, ceil_mode=True)
            branches.append(self._unit(f"{prefix}_pool_proj", pooled))
        return torch.cat(branches, dim=1)

    def forward_features(self, images: Tensor) -> Tensor:
        """The last feature map ``[B, 1024, h, w]``."""
        x = self.conv1_dropout(self.get_submodule("conv1_7x7_s2")(images))
        x = F.relu(self.get_submodule("conv1_7x7_s2_bn")(x), inplace=True)
        x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
        x = self._unit("conv2_3x3", self._unit("conv2_3x3_reduce", x))
        x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
        for block in BLOCKS:
            x = self._block(block, x)
        return x

    def forward(self, images: Tensor) -> Tensor:
        return self.pool(self.forward_features(images))

    def load_published_weights(self, weights_path: str | None = None) -> None:
        """Load ``bn_inception-52deb4733.pth`` (or ``weights_path``) from disk.

        The published file also holds the ImageNet classifier (``last_linear.*``, dropped here),
        lacks ``num_batches_tracked`` (set to 0), and some conversions of it store BatchNorm
        tensors as ``[1, C]`` (squeezed to ``[C]``).
        """
        path = locate_weights(WEIGHTS_FILE, WEIGHTS_URL, weights_path, "BNInception")
        state = convert_published_state_dict(load_state_dict_file(path, "BNInception"), self.state_dict())
        check_state_dict_fits(self, state, path, "BNInception")
        self.load_state_dict(state)


def convert_published_state_dict(
    published: dict[str, Tensor], reference: dict[str, Tensor]
) -> dict[str, Tensor]:
    """Map the published ``pretrainedmodels`` layout onto this module's ``state_dict`` layout."""
    classifier = ("last_linear.", "fc.")  # the ImageNet head (named fc in the earliest conversions)
    state = {k: v for k, v in published.items() if not k.startswith(classifier)}
    for key, target in reference.items():
        if key in state and state[key].dim() == 2 and target.dim() == 1 and state[key].shape[0] == 1:
            state[key] = state[key].reshape(-1)
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(target)
    return state
