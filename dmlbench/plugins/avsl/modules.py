"""AVSL's trained modules: the embedder (per-level embeddings, activation maps, certainties) and
the collector (per-level proxies, the learnable a and b, the EMA link matrices).

Math: :mod:`dmlbench.plugins.avsl.functional` and docs/methods/avsl.md.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.plugins.avsl import functional as AF
from dmlbench.registry import register


@register("model")
class AVSLEmbedder(nn.Module):
    """Per level l a 1x1 convolution C_l to ``dim`` channels, used twice:

    - embedding ``e^l = C_l(GAP(F^l) + GMP(F^l))`` [B, dim] (trained);
    - activation maps ``M^l = C_l(F^l + U(F^l))`` [B, dim, H_l, W_l] and their certainties
      ``c^l`` [B, dim], computed without gradient (from detached maps).

    Input: a multi-level trunk's maps (``level_channels`` is filled in from the trunk).
    Output: ``[e^1, ..., e^L, c^1, ..., c^L]`` concatenated, [B, 2 L dim]
    (:meth:`split` separates them); the certainties ride along so that the test-time
    similarity, which receives one tensor per sample, has them.
    """

    def __init__(self, level_channels: list[int], dim: int = 512) -> None:
        super().__init__()
        if not level_channels or any(int(c) < 1 for c in level_channels) or int(dim) < 1:
            raise ConfigError(
                f"AVSLEmbedder: need a multi-level trunk (level_channels, got {level_channels!r}) "
                f"and dim >= 1 (got {dim!r}); use e.g. trunk: {{MultiLevelTrunk: {{name: resnet50}}}}"
            )
        self.level_channels = [int(c) for c in level_channels]
        self.dim = int(dim)
        self.num_levels = len(self.level_channels)
        convs = [nn.Conv2d(c, self.dim, kernel_size=1) for c in self.level_channels]
        for conv in convs:
            nn.init.kaiming_normal_(conv.weight, mode="fan_out")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        self.convs = nn.ModuleList(convs)
        self.num_features = 2 * self.num_levels * self.dim

    def _check(self, features: Any) -> None:
        if not isinstance(features, (tuple, list)) or len(features) != self.num_levels:
            got = (
                f"{len(features)} maps"
                if isinstance(features, (tuple, list))
                else f"a tensor {tuple(features.shape)}"
            )
            raise ConfigError(
                f"AVSLEmbedder expects {self.num_levels} feature maps from a multi-level trunk "
                f"(models/multilevel.py), got {got}"
            )

    def level_embeddings(self, features: list[Tensor]) -> list[Tensor]:
        """``e^l = C_l(GAP + GMP)`` per level, [B, dim] each."""
        return [conv(AF.gap_plus_gmp(f)).flatten(1) for conv, f in zip(self.convs, features)]

    def activation_maps(self, features: list[Tensor]) -> list[Tensor]:
        """``M^l = C_l(F + U(F))`` per level, no gradient, in the weights' precision even under autocast:
        [B, dim, H_l, W_l]."""
        with torch.no_grad(), torch.autocast(features[0].device.type, enabled=False):
            maps = [f.detach().to(next(conv.parameters()).dtype) for conv, f in zip(self.convs, features)]
            return [conv(f + AF.spread_max(f)) for conv, f in zip(self.convs, maps)]

    def forward(self, features: Any) -> Tensor:
        self._check(features)
        embeddings = self.level_embeddings(list(features))
        certainties = [AF.certainty(m) for m in self.activation_maps(list(features))]
        return torch.cat([*embeddings, *certainties], dim=1)

    def split(self, output: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """The embeddings and certainties of :meth:`forward`'s output, L tensors [B, dim] each."""
        return split_output(output, self.num_levels, self.dim)


def split_output(output: Tensor, num_levels: int, dim: int) -> tuple[list[Tensor], list[Tensor]]:
    """``[e^1..e^L, c^1..c^L]`` [B, 2 L dim] -> ([e^l], [c^l])."""
    if output.shape[-1] != 2 * num_levels * dim:
        raise ConfigError(
            f"AVSL: expected embeddings of width 2 x {num_levels} levels x {dim} = "
            f"{2 * num_levels * dim} (AVSLEmbedder), got {output.shape[-1]}"
        )
    parts = list(output.split(dim, dim=-1))
    return parts[:num_levels], parts[num_levels:]


class AVSLCollector(nn.Module):
    """Per-level proxies [num_classes, dim], the gate parameters a^l (init 1) and b^l (init 0) per
    dimension for levels 2..L, and the link matrices A^{l-1 -> l} [dim, dim] as buffers (an EMA
    with ``momentum``; the first batch is copied), so checkpoints hold them."""

    links_initialized: Tensor  # a buffer

    def __init__(self, num_levels: int, dim: int, num_classes: int, momentum: float = 0.5) -> None:
        super().__init__()
        self.num_levels, self.dim, self.momentum = int(num_levels), int(dim), float(momentum)
        self.proxies = nn.ParameterList()
        for _ in range(self.num_levels):
            proxy = torch.empty(int(num_classes), self.dim)
            nn.init.kaiming_normal_(proxy, a=math.sqrt(5))
            self.proxies.append(nn.Parameter(proxy))
        self.a = nn.ParameterList(nn.Parameter(torch.ones(self.dim)) for _ in range(self.num_levels - 1))
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(self.dim)) for _ in range(self.num_levels - 1))
        for level in range(1, self.num_levels):
            self.register_buffer(f"link_{level - 1}_{level}", torch.zeros(self.dim, self.dim))
        self.register_buffer("links_initialized", torch.zeros((), dtype=torch.bool))

    def links(self) -> list[Tensor]:
        """The EMA link matrices A, lowest pair first."""
        return [getattr(self, f"link_{level - 1}_{level}") for level in range(1, self.num_levels)]

    @torch.no_grad()
    def update_links(self, batch_links: list[Tensor]) -> None:
        """EMA step with this batch's link matrices (:func:`functional.link_matrix`)."""
        initialized = bool(self.links_initialized)
        for buffer, new in zip(self.links(), batch_links):
            buffer.copy_(AF.ema_update(buffer, new.to(buffer.dtype), self.momentum, initialized))
        self.links_initialized.fill_(True)

    def normalized_links(self, k: int) -> list[Tensor]:
        """W = column-normalised top-k of ReLU(A), per pair of levels (no gradient)."""
        return [AF.topk_column_normalized(link.detach(), min(int(k), self.dim)) for link in self.links()]
