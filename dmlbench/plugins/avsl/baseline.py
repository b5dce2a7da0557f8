"""The Proxy-Anchor baseline of the AVSL release (zbr17/AVSL, ``--setting proxy_anchor``) as a loss.

The official baseline is GeDML's ``ProxyCollector`` (proxies [C, E], ``kaiming_uniform_(a=sqrt(5))``),
the ``euclid`` metric (``MetricFactory(is_normalize=True, metric_name="LpMetric")``: both sides
L2-normalised, then ``torch.cdist``, i.e. the *non-squared* distance) and the release's own
distance-form ``ProxyAnchorLoss`` (src/avsl/losses/proxy_anchor_loss.py). With D [N, C] the
distances of the batch's embeddings to every proxy (rows samples, columns proxies)::

    L = mean_{c in P+} log(1 + sum_{i: y_i = c}  exp( alpha (D_ic - pos_margin)))
      + mean_{c}       log(1 + sum_{i: y_i != c} exp(-alpha (D_ic - neg_margin)))

(:func:`~dmlbench.plugins.avsl.functional.proxy_anchor_distance_loss`). ``distance:
squared_euclidean`` uses ``D = |e - p|^2 = 2 - 2 cos`` instead, with which alpha 16 and margins
1.8 / 2.2 are Kim et al.'s cosine Proxy-Anchor (alpha 32, margin 0.1; pytorch-metric-learning's
``ProxyAnchorLoss``). docs/methods/avsl.md says which form each released command runs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.loss import _Loss

from dmlbench.errors import ConfigError
from dmlbench.plugins.avsl.functional import proxy_anchor_distance_loss
from dmlbench.registry import register

DISTANCES = ("euclidean", "squared_euclidean")


def gedml_proxy_init_(proxies: Tensor) -> Tensor:
    """In place, GeDML's ``ProxyCollector`` rule: ``kaiming_uniform_(a=sqrt(5))`` on [C, E], i.e.
    every entry uniform in +-1/sqrt(E) (row norm about sqrt(1/3) = 0.58)."""
    return nn.init.kaiming_uniform_(proxies, a=math.sqrt(5))


@register("loss", "ProxyAnchorDistanceLoss")
class ProxyAnchorDistanceLoss(_Loss):
    """Proxy-Anchor in distance form with one proxy per class, as the AVSL release's baseline.

    ``num_classes`` and ``embedding_size`` are filled in by the runner. Embeddings and proxies are
    L2-normalised before the distance. ``distance``: ``euclidean`` (the release's ``euclid``
    metric, ``torch.cdist``) or ``squared_euclidean``.
    """

    proxy_labels: Tensor  # a buffer

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        alpha: float = 16.0,
        pos_margin: float = 1.8,
        neg_margin: float = 2.2,
        distance: str = "euclidean",
    ) -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ConfigError(
                f"ProxyAnchorDistanceLoss: distance must be one of {', '.join(DISTANCES)}, got {distance!r}"
            )
        self.alpha = float(alpha)
        self.pos_margin = float(pos_margin)
        self.neg_margin = float(neg_margin)
        self.distance_form = distance
        self.proxies = nn.Parameter(gedml_proxy_init_(torch.empty(int(num_classes), int(embedding_size))))
        self.register_buffer("proxy_labels", torch.arange(int(num_classes)), persistent=False)

    def distances(self, embeddings: Tensor) -> Tensor:
        """[N, C] distances of the L2-normalised embeddings to the L2-normalised proxies."""
        rows = F.normalize(embeddings, dim=-1)
        proxies = F.normalize(self.proxies, dim=-1).to(rows.dtype)
        if self.distance_form == "euclidean":
            return torch.cdist(rows, proxies, p=2)
        return (2 - 2 * rows @ proxies.T).clamp_min(0)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: object = None) -> Tensor:
        return proxy_anchor_distance_loss(
            self.distances(embeddings),
            labels,
            self.proxy_labels,
            alpha=self.alpha,
            pos_margin=self.pos_margin,
            neg_margin=self.neg_margin,
        )
