"""Embedders: the small heads that map trunk features to the embedding space.

An embedder that is an affine map of the pooled features ``y`` (at least at each image) says so
with ``affine_form(y) -> (M, c)``, ``e = M y + c`` before any L2 normalisation (``None`` where
it is not affine): ``python -m dmlbench.explain`` then splits the similarity exactly
(docs/explain.md); other embedders are linearised there.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.registry import register


def layer_norm_matrix(layer_norm: nn.LayerNorm | None, features: Tensor) -> Tensor:
    """A LayerNorm without affine parameters as a matrix at ``features`` [C]:
    ``LN(y) = (y - mean(y)) / s = (I - 1 1^T / C) y / s`` with ``s = sqrt(var(y) + eps)``, one
    scalar of the image (the identity matrix for ``layer_norm=None``)."""
    size = features.shape[0]
    eye = torch.eye(size, dtype=features.dtype, device=features.device)
    if layer_norm is None:
        return eye
    if layer_norm.elementwise_affine:
        raise ValueError("layer_norm_matrix: a LayerNorm with affine parameters is not handled")
    return (eye - 1.0 / size) / torch.sqrt(features.var(unbiased=False) + layer_norm.eps)


def linear_form(linear: nn.Linear, matrix: Tensor) -> tuple[Tensor, Tensor]:
    """``(W matrix, b)`` of ``linear`` after ``matrix`` (a zero ``b`` without bias)."""
    weight = linear.weight.detach()
    bias = linear.bias.detach() if linear.bias is not None else torch.zeros_like(weight[:, 0])
    return weight @ matrix.to(weight.dtype), bias


WEIGHT_INITS = ("default", "kaiming_normal_fan_out")


@register("model")
class MLP(nn.Module):
    """Linear layers with ReLU between them (none after the last): the MLRC embedder.

    ``MLP(layer_sizes=[128])`` on a 1024-d trunk is ``Linear(1024, 128)``. The input width is
    supplied by the model factory from the trunk (``input_size``).

    ``weight_init``: ``default`` keeps PyTorch's ``nn.Linear`` initialisation; ``kaiming_normal_fan_out``
    draws each weight from N(0, 2 / fan_out) with zero biases, as GeDML's ``MLP`` (the embedder of
    the AVSL release's Proxy-Anchor baseline; gedml/core/models/basic_models/mlp.py).
    """

    def __init__(
        self, layer_sizes: list[int], input_size: int, final_relu: bool = False, weight_init: str = "default"
    ) -> None:
        super().__init__()
        if weight_init not in WEIGHT_INITS:
            raise ConfigError(
                f"MLP: weight_init must be one of {', '.join(WEIGHT_INITS)}, got {weight_init!r}"
            )
        sizes = [int(input_size), *[int(s) for s in layer_sizes]]
        layers: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if index > 0:
                layers.append(nn.ReLU(inplace=True))
            linear = nn.Linear(fan_in, fan_out)
            layers.append(linear)
            if weight_init == "kaiming_normal_fan_out":
                nn.init.kaiming_normal_(linear.weight, mode="fan_out")
                nn.init.zeros_(linear.bias)
        if final_relu:
            layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)
        self.num_features = sizes[-1]

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)

    def affine_form(self, features: Tensor) -> tuple[Tensor, Tensor] | None:
        """``(W, b)`` of a one-layer MLP; ``None`` with hidden layers or a final ReLU."""
        if len(self.net) != 1 or not isinstance(self.net[0], nn.Linear):
            return None
        return linear_form(
            self.net[0], torch.eye(features.shape[0], dtype=features.dtype, device=features.device)
        )


@register("model")
class IdentityEmbedder(nn.Module):
    """No embedder: the trunk features are the embeddings."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.num_features = int(input_size)

    def forward(self, features: Tensor) -> Tensor:
        return features

    def affine_form(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """``(I, 0)``."""
        return torch.eye(features.shape[0], dtype=features.dtype, device=features.device), torch.zeros_like(
            features
        )
