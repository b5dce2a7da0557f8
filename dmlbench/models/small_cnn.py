"""A small convolutional trunk for the CPU demo (64-pixel images, trained from scratch)."""

from __future__ import annotations

from torch import Tensor, nn

from dmlbench.registry import register


def conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


@register("model")
class SmallConvNet(nn.Module):
    """``num_blocks`` conv3x3-BN-ReLU blocks, each halving the resolution (stride 2) and doubling
    the width from ``width`` up to ``num_features``, then global average pooling.

    Output: ``[batch, num_features]``. With the defaults a 64x64 image becomes 32 -> 16 -> 8 -> 4
    pixels with 32 -> 64 -> 128 -> 128 channels.
    """

    def __init__(
        self, num_features: int = 128, width: int = 32, num_blocks: int = 4, in_channels: int = 3
    ) -> None:
        super().__init__()
        if num_features < 1 or width < 1 or num_blocks < 1 or in_channels < 1:
            raise ValueError(
                f"SmallConvNet: num_features={num_features}, width={width}, num_blocks={num_blocks} and "
                f"in_channels={in_channels} must all be >= 1"
            )
        widths = [min(width * 2**block, num_features) for block in range(num_blocks)]
        widths[-1] = num_features
        blocks = []
        for out_channels in widths:
            blocks.append(conv_bn_relu(in_channels, out_channels, stride=2))
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = int(num_features)

    def forward_features(self, images: Tensor) -> Tensor:
        """The last feature map ``[B, num_features, h, w]`` (before the global average pooling)."""
        return self.features(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.pool(self.features(images)).flatten(1)
