"""The embedding head of the classification baseline (Zhai & Wu, BMVC 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.models.embedders import layer_norm_matrix
from dmlbench.registry import register


@register("model")
class NormalizedEmbedder(nn.Module):
    """``x = L2norm(W · LayerNorm(f))`` for pooled trunk features ``f`` ([B, input_size]).

    - ``LayerNorm`` has no affine parameters: each feature vector is standardised,
      ``(f - mean(f)) / sqrt(var(f) + eps)``, so its coordinates are centred on zero (which
      also makes the binarised code ``1[x > 0]`` balanced);
    - ``W`` is a bias-free ``Linear(input_size, embedding_size)``, present only when
      ``embedding_size`` is set and differs from ``input_size`` (2048-d ResNet50 features are
      used as they are);
    - the output is L2-normalised when ``normalize`` (the loss and the evaluation normalise
      again, which changes nothing).

    ``input_size`` is filled in by the model factory from the trunk.
    """

    def __init__(
        self, input_size: int, embedding_size: int | None = None, normalize: bool = True, eps: float = 1e-5
    ) -> None:
        super().__init__()
        input_size = int(input_size)
        if embedding_size is not None and (isinstance(embedding_size, bool) or int(embedding_size) < 1):
            raise ConfigError(
                f"NormalizedEmbedder: embedding_size={embedding_size!r} must be a positive integer, or null to "
                f"keep the trunk's {input_size} features"
            )
        self.standardize = nn.LayerNorm(input_size, eps=eps, elementwise_affine=False)
        width = input_size if embedding_size is None else int(embedding_size)
        self.remap = nn.Linear(input_size, width, bias=False) if width != input_size else None
        self.normalize = bool(normalize)
        self.num_features = width

    def forward(self, features: Tensor) -> Tensor:
        x = self.standardize(features.flatten(1))
        if self.remap is not None:
            x = self.remap(x)
        if self.normalize:
            x = nn.functional.normalize(x, p=2, dim=1)
        return x

    def affine_form(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Before the L2 normalisation, ``e = W Q y / s`` at ``features`` ``y`` [C]
        (:func:`~dmlbench.models.embedders.layer_norm_matrix`; ``W = I`` without ``remap``)."""
        matrix = layer_norm_matrix(self.standardize, features)
        if self.remap is not None:
            matrix = self.remap.weight.detach() @ matrix
        return matrix, torch.zeros(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
