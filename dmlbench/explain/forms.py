"""Which trunks, poolings and embedders the decomposition of :mod:`dmlbench.explain.decompose`
covers, and how each is written as its feature map, pooling and affine form.

Trunks: any trunk with ``forward_features(images) -> [B, C, h, w]`` and a global pooling module
``pool`` (TorchvisionTrunk, BNInception, SmallConvNet); the pipeline checks that the trunk's
output is that pooling of those maps. Multi-level trunks (AVSL) have their own explanation.

Embedders (``e`` before any L2 normalisation, which the cosine ignores):

- ``IdentityEmbedder``: ``M = I``, ``c = 0`` -- exact;
- ``MLP`` of one linear layer (no final ReLU): ``M = W``, ``c = b`` -- exact;
- ``NormalizedEmbedder`` (classification baseline) and ``ContextualEmbedder``: ``LayerNorm``
  without affine parameters, ``LN(y) = (y - mean(y)) / s`` with ``s = sqrt(var(y) + eps)``, is
  ``Q y / s`` with the centring matrix ``Q = I - 1 1^T / C``; ``1 / s`` is a scalar of the image
  (like ``1 / |e|``), so ``M = W Q / s`` and ``c = b`` (or 0) -- exact;
- any other embedder (an MLP with hidden layers, a user's head): its linearisation at the image,
  ``M = de/dy`` (autograd) and ``c = e - M y``. The terms still add up to the similarity, but
  which hidden units are active is decided by the whole image, so ``exact: false``. For a ReLU
  MLP ``c`` is exactly the biases passed through the active units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.explain.decompose import AffineForm
from dmlbench.models.embedders import MLP, IdentityEmbedder
from dmlbench.models.pooling import GeneralizedMeanPooling, GlobalAvgMaxPool, GlobalAvgPool, GlobalMaxPool


@dataclass(frozen=True)
class SpatialTrunk:
    """A trunk as ``features(images) -> [B, C, h, w]`` followed by a global ``pooling``."""

    features: Callable[[Tensor], Tensor]
    pooling: str
    gem_p: float = 3.0
    gem_eps: float = 1e-6


def _is_global(output_size: object) -> bool:
    return output_size in (1, (1, 1), [1, 1])


def pooling_of(pool: nn.Module) -> tuple[str, float, float]:
    """``(name, gem_p, gem_eps)`` of a global pooling module, or a ConfigError."""
    if isinstance(pool, GeneralizedMeanPooling):
        return "gem", float(pool.p), float(pool.eps)
    if isinstance(pool, GlobalAvgMaxPool):
        return "avg+max", 3.0, 1e-6
    if isinstance(pool, GlobalAvgPool) or (
        isinstance(pool, nn.AdaptiveAvgPool2d) and _is_global(pool.output_size)
    ):
        return "avg", 3.0, 1e-6
    if isinstance(pool, GlobalMaxPool) or (
        isinstance(pool, nn.AdaptiveMaxPool2d) and _is_global(pool.output_size)
    ):
        return "max", 3.0, 1e-6
    raise ConfigError(
        f"cannot explain: the trunk's pooling {type(pool).__name__} is not one of global avg, max, "
        "avg+max or gem"
    )


def spatial_trunk(trunk: nn.Module) -> SpatialTrunk:
    """The trunk's last feature maps and pooling, or a one-line ConfigError."""
    features = getattr(trunk, "forward_features", None)
    pool = getattr(trunk, "pool", None)
    if not callable(features) or not isinstance(pool, nn.Module):
        raise ConfigError(
            f"cannot explain: trunk {type(trunk).__name__} has no spatial feature maps (it needs "
            "forward_features(images) -> [B, C, h, w] and a global pooling module 'pool', as "
            "TorchvisionTrunk, BNInception and SmallConvNet have)"
        )
    name, p, eps = pooling_of(pool)
    return SpatialTrunk(features, name, p, eps)


def _centred_scaled(layer_norm: nn.LayerNorm | None, pooled: Tensor) -> Tensor:
    """The matrix of ``LN(y) = Q y / s`` at ``y`` (an identity matrix without LayerNorm)."""
    size = pooled.shape[0]
    eye = torch.eye(size, dtype=pooled.dtype, device=pooled.device)
    if layer_norm is None:
        return eye
    scale = torch.sqrt(pooled.var(unbiased=False) + layer_norm.eps)
    return (eye - 1.0 / size) / scale


def _linear_parts(linear: nn.Linear | None, size: int, like: Tensor) -> tuple[Tensor, Tensor]:
    if linear is None:
        return torch.eye(size, dtype=like.dtype, device=like.device), torch.zeros(
            size, dtype=like.dtype, device=like.device
        )
    bias = linear.bias if linear.bias is not None else torch.zeros_like(linear.weight[:, 0])
    return linear.weight.detach(), bias.detach()


def affine_form(embedder: nn.Module, pooled: Tensor) -> AffineForm:
    """``e = M y + c`` of ``embedder`` at the pooled features ``pooled`` [C] (module docstring)."""
    from dmlbench.plugins.classification.embedder import NormalizedEmbedder
    from dmlbench.plugins.contextual.model import ContextualEmbedder

    size = pooled.shape[0]
    if isinstance(embedder, IdentityEmbedder):
        weight, bias = _linear_parts(None, size, pooled)
        return AffineForm(weight, bias, True)
    if isinstance(embedder, MLP) and len(embedder.net) == 1 and isinstance(embedder.net[0], nn.Linear):
        weight, bias = _linear_parts(embedder.net[0], size, pooled)
        return AffineForm(weight, bias, True)
    if isinstance(embedder, (NormalizedEmbedder, ContextualEmbedder)):
        standardize = embedder.standardize
        if standardize is not None and standardize.elementwise_affine:
            return linearised(embedder, pooled)
        weight, bias = _linear_parts(embedder.remap, size, pooled)
        return AffineForm(weight @ _centred_scaled(standardize, pooled), bias, True)
    return linearised(embedder, pooled)


def linearised(embedder: nn.Module, pooled: Tensor) -> AffineForm:
    """The first-order form at ``pooled``: ``M = de/dy``, ``c = e - M y`` (``exact: false``)."""
    with torch.enable_grad():
        jacobian = torch.autograd.functional.jacobian(lambda y: embedder(y[None])[0], pooled.detach())
    with torch.no_grad():
        output = embedder(pooled[None])[0]
    return AffineForm(jacobian, output - jacobian @ pooled, False)
