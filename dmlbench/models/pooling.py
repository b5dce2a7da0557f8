"""Global pooling of a feature map ``[B, C, H, W]`` into a feature vector ``[B, C]``.

Names accepted by :func:`build_pooling` (and by the trunks' ``pooling`` argument):

- ``"avg"``: global average pooling, ``y_c = mean_{h,w} x_{c,h,w}``;
- ``"max"``: global max pooling, ``y_c = max_{h,w} x_{c,h,w}``;
- ``"avg+max"``: their sum, ``y = avg(x) + max(x)`` (the pooling of DAS and AVSL);
- ``"gem"``: generalized mean (GeM, Radenovic et al. 2018),
  ``y_c = (mean_{h,w} max(x_{c,h,w}, eps)^p)^(1/p)`` with ``p = 3``. ``p`` is a fixed constant by
  default (the setting of the Contextual-similarity 224-px recipe); pass ``learnable=True`` to
  :class:`GeneralizedMeanPooling` to train it.
"""

from __future__ import annotations

import difflib

import torch
from torch import Tensor, nn

from dmlbench.errors import ConfigError


class GlobalAvgPool(nn.Module):
    """``[B, C, H, W] -> [B, C]``: the mean over all positions."""

    def forward(self, features: Tensor) -> Tensor:
        return features.mean(dim=(-2, -1))


class GlobalMaxPool(nn.Module):
    """``[B, C, H, W] -> [B, C]``: the maximum over all positions."""

    def forward(self, features: Tensor) -> Tensor:
        return features.amax(dim=(-2, -1))


class GlobalAvgMaxPool(nn.Module):
    """``[B, C, H, W] -> [B, C]``: average plus maximum over all positions."""

    def forward(self, features: Tensor) -> Tensor:
        return features.mean(dim=(-2, -1)) + features.amax(dim=(-2, -1))


class GeneralizedMeanPooling(nn.Module):
    """GeM: ``y_c = (mean_{h,w} clamp(x, min=eps)^p)^(1/p)``.

    ``p = 1`` is average pooling and ``p -> inf`` tends to max pooling. The power is computed in
    float32 even under autocast (``x^3`` of half-precision activations overflows easily).
    """

    def __init__(self, p: float = 3.0, learnable: bool = False, eps: float = 1e-6) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"GeneralizedMeanPooling: p must be > 0, got {p}")
        p_tensor = torch.tensor(float(p))
        if learnable:
            self.p = nn.Parameter(p_tensor)
        else:
            self.register_buffer("p", p_tensor)
        self.eps = float(eps)

    def forward(self, features: Tensor) -> Tensor:
        p = self.p.float()
        powered = features.float().clamp(min=self.eps).pow(p)
        return powered.mean(dim=(-2, -1)).pow(1.0 / p).to(features.dtype)

    def extra_repr(self) -> str:
        return f"p={float(self.p):.4g}, learnable={isinstance(self.p, nn.Parameter)}, eps={self.eps}"


POOLINGS: dict[str, type[nn.Module]] = {
    "avg": GlobalAvgPool,
    "max": GlobalMaxPool,
    "avg+max": GlobalAvgMaxPool,
    "gem": GeneralizedMeanPooling,
}


def build_pooling(name: str, **kwargs: object) -> nn.Module:
    """The pooling module called ``name`` (see the module docstring); ``kwargs`` go to GeM."""
    key = str(name).lower().replace(" ", "")
    if key not in POOLINGS:
        close = difflib.get_close_matches(key, list(POOLINGS), n=2, cutoff=0.4)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown pooling {name!r}{hint}; choose one of {', '.join(POOLINGS)}")
    if kwargs and key != "gem":
        raise ConfigError(f"pooling {name!r} takes no options, got {sorted(kwargs)}")
    return POOLINGS[key](**kwargs)
