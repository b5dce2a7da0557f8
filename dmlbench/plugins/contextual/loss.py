"""``ContextualHybridLoss``: the Hybrid loss (contextual + contrastive + similarity regulariser)
of the contextual-similarity paper (ICML 2023) as a pytorch-metric-learning loss."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu
from torch import Tensor

from dmlbench.errors import ConfigError
from dmlbench.plugins.contextual import functional as CF
from dmlbench.registry import register

_ROLE = "loss_funcs.<role>.ContextualHybridLoss"


def _number(name: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{_ROLE}.{name}: expected a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{_ROLE}.{name}={value} must lie in [{low}, {high}]")
    return float(value)


@register("loss")
class ContextualHybridLoss(BaseMetricLossFunction):
    """The Hybrid loss ``w_ctx L_ctx + w_con L_con + w_reg L_reg`` (formulas in
    :mod:`dmlbench.plugins.contextual.functional` and docs/methods/contextual.md).

    Called as ``loss(embeddings, labels[, indices_tuple])``; the embeddings are L2-normalised here
    (``S`` = cosine similarity), so any trunk/embedder works. Defaults are the official 256-px
    settings (root ``main.py``): ``lam 0.4, gamma 0.1, eps 0.05, reg_sim 0.25, pos_margin 0.75,
    neg_margin 0.6, k 4``.

    Args:
        version: how ``lam`` and ``gamma`` weigh the terms. ``"256"``:
            ``lam L_ctx + gamma L_reg + (1 - lam - gamma) L_con``; ``"224"`` (the 224-px code):
            ``lam L_con + (1 - lam) L_ctx + gamma L_reg``.
        weights: ``{contextual: a, contrastive: b, regularizer: c}`` instead of ``lam``/``gamma``
            (missing terms weigh 0), e.g. ``{contextual: 1}`` for the contextual term alone.
            With the ``"256"`` version, ``lam: 1, gamma: 0`` is the contextual term alone,
            ``lam: 0, gamma: 0`` the contrastive term alone, ``gamma: 0`` drops the regulariser.
        k, eps: neighbourhood size (the sample itself counts) and distance tolerance.
        step_slope: the straight-through step's backward gradient magnitude (official: 10).

    ``indices_tuple`` (from a miner; pairs or triplets) restricts the contrastive and contextual
    *pair sums* to the mined pairs; neighbourhoods and the regulariser still use the whole batch.
    Without it every pair counts, as in the paper.
    """

    TERMS = ("contextual", "contrastive", "regularizer")

    def __init__(
        self,
        lam: float = 0.4,
        gamma: float = 0.1,
        eps: float = 0.05,
        reg_sim: float = 0.25,
        pos_margin: float = 0.75,
        neg_margin: float = 0.6,
        k: int = 4,
        version: str = "256",
        weights: dict[str, float] | None = None,
        step_slope: float = CF.DEFAULT_STEP_SLOPE,
        **kwargs: Any,
    ) -> None:
        if "distance" in kwargs:
            raise ConfigError(f"{_ROLE}.distance: this loss always uses the cosine similarity of its inputs")
        super().__init__(distance=CosineSimilarity(), **kwargs)
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ConfigError(f"{_ROLE}.k={k!r} must be an integer >= 2 (the k-th and (k//2)-th neighbours)")
        self.k = k
        self.eps = _number("eps", eps, 0.0)
        self.reg_sim = _number("reg_sim", reg_sim, -1.0, 1.0)
        self.pos_margin = _number("pos_margin", pos_margin)
        self.neg_margin = _number("neg_margin", neg_margin)
        self.step_slope = _number("step_slope", step_slope, 0.0)
        self.version = str(version)
        if weights is not None:
            if not isinstance(weights, dict) or set(weights) - set(self.TERMS):
                raise ConfigError(
                    f"{_ROLE}.weights: expected a mapping with keys among {', '.join(self.TERMS)}, "
                    f"got {weights!r}"
                )
            self.weights = {
                term: _number(f"weights.{term}", weights.get(term, 0.0), 0.0) for term in self.TERMS
            }
        else:
            if self.version not in ("256", "224"):
                raise ConfigError(
                    f"{_ROLE}.version={version!r}: choose '256' (root main.py) or '224' (224x224/)"
                )
            self.weights = CF.hybrid_weights(
                self.version, _number("lam", lam, 0.0, 1.0), _number("gamma", gamma, 0.0, 1.0)
            )
            if self.weights["contrastive"] < 0:
                raise ConfigError(
                    f"{_ROLE}: lam + gamma = {lam + gamma} > 1 leaves the contrastive term a "
                    "negative weight (version '256')"
                )
        self.last_terms: dict[str, float] = {}

    def compute_loss(
        self, embeddings: Tensor, labels: Tensor, indices_tuple: Any, ref_emb: Tensor, ref_labels: Tensor
    ) -> dict[str, Any]:
        if ref_emb is not embeddings:
            raise ValueError("ContextualHybridLoss compares a batch with itself; ref_emb is not supported")
        if labels is None:
            raise ValueError("ContextualHybridLoss needs labels")
        if embeddings.dtype in (torch.float16, torch.bfloat16):  # mixed precision: the loss in float32
            embeddings = embeddings.float()
        similarity = self.distance(embeddings)
        same_label = (labels.unsqueeze(1) == labels.unsqueeze(0)).to(similarity.dtype)
        positive_mask = negative_mask = None
        if indices_tuple is not None:
            positive_mask, negative_mask = self._pair_masks(indices_tuple, labels, similarity)
        total = similarity.new_zeros(())
        terms: dict[str, Tensor] = {}
        if self.weights["contextual"]:
            pair_mask = (
                None
                if positive_mask is None or negative_mask is None
                else (positive_mask + negative_mask).clamp(max=1.0)
            )
            terms["contextual"] = CF.contextual_term(
                similarity, same_label, self.k, self.eps, self.step_slope, pair_mask
            )
        if self.weights["contrastive"]:
            terms["contrastive"] = CF.contrastive_term(
                similarity, same_label, self.pos_margin, self.neg_margin, positive_mask, negative_mask
            )
        if self.weights["regularizer"]:
            terms["regularizer"] = CF.similarity_regularizer(similarity, self.reg_sim)
        for name, value in terms.items():
            total = total + self.weights[name] * value
        self.last_terms = {name: float(value.detach()) for name, value in terms.items()}
        return {"loss": {"losses": total, "indices": None, "reduction_type": "already_reduced"}}

    @staticmethod
    def _pair_masks(indices_tuple: Any, labels: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """Symmetric 0/1 masks of the mined positive and negative pairs."""
        anchor_p, positive, anchor_n, negative = lmu.convert_to_pairs(indices_tuple, labels)
        size = len(labels)
        positive_mask = torch.zeros(size, size, device=like.device, dtype=like.dtype)
        negative_mask = torch.zeros_like(positive_mask)
        positive_mask[anchor_p, positive] = 1.0
        positive_mask[positive, anchor_p] = 1.0
        negative_mask[anchor_n, negative] = 1.0
        negative_mask[negative, anchor_n] = 1.0
        return positive_mask, negative_mask
