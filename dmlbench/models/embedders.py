"""Embedders: the small heads that map trunk features to the embedding space."""

from __future__ import annotations

from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.registry import register

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
            layers.append(nn.Linear(fan_in, fan_out))
            if weight_init == "kaiming_normal_fan_out":
                nn.init.kaiming_normal_(layers[-1].weight, mode="fan_out")
                nn.init.zeros_(layers[-1].bias)
        if final_relu:
            layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)
        self.num_features = sizes[-1]

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)


@register("model")
class IdentityEmbedder(nn.Module):
    """No embedder: the trunk features are the embeddings."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.num_features = int(input_size)

    def forward(self, features: Tensor) -> Tensor:
        return features
