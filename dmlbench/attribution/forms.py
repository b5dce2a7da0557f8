"""Which trunks, poolings and embedders the decomposition of :mod:`dmlbench.attribution.decompose`
covers, and how each is written as its feature map, pooling and affine form.

Trunks: any trunk with ``forward_features(images) -> [B, C, h, w]`` and a global pooling module
``pool`` (TorchvisionTrunk, BNInception, SmallConvNet); the pipeline checks that the trunk's
output is that pooling of those maps. Multi-level trunks (AVSL) have their own explanation.

Embedders (``e`` before any L2 normalisation, which the cosine ignores):

- an embedder with ``affine_form(y) -> (M, c)`` (not ``None``) is that affine map at the image --
  exact. ``IdentityEmbedder`` (``M = I``), ``MLP`` of one layer without final ReLU (``M = W``,
  ``c = b``), and the plugins' ``NormalizedEmbedder`` and ``ContextualEmbedder``: their LayerNorm
  without affine parameters is ``Q y / s`` with the centring matrix ``Q = I - 1 1^T / C`` and
  ``s = sqrt(var(y) + eps)`` a scalar of the image (like ``|e|``), so ``M = W Q / s``, ``c = b``
  (:func:`dmlbench.models.embedders.layer_norm_matrix`);
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

from dmlbench.attribution.decompose import AffineForm
from dmlbench.errors import ConfigError
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


def affine_form(embedder: nn.Module, pooled: Tensor) -> AffineForm:
    """``e = M y + c`` of ``embedder`` at the pooled features ``pooled`` [C] (module docstring)."""
    declared = getattr(embedder, "affine_form", None)
    form = declared(pooled) if callable(declared) else None
    if form is None:
        return linearised(embedder, pooled)
    matrix, offset = form
    return AffineForm(matrix.to(pooled.dtype), offset.to(pooled.dtype), True)


def linearised(embedder: nn.Module, pooled: Tensor) -> AffineForm:
    """The first-order form at ``pooled``: ``M = de/dy``, ``c = e - M y`` (``exact: false``)."""
    with torch.enable_grad():
        jacobian = torch.autograd.functional.jacobian(lambda y: embedder(y[None])[0], pooled.detach())
    with torch.no_grad():
        output = embedder(pooled[None])[0]
    return AffineForm(jacobian, output - jacobian @ pooled, False)
