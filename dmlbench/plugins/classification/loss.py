"""The classification baseline's loss: normalised softmax with the official initialisation.

``L = CE(W_n x_n / T, y)``: x_n the L2-normalised embedding, W_n the class weights with each
class's vector L2-normalised, T the temperature (0.05). pytorch-metric-learning's
``NormalizedSoftmaxLoss`` computes exactly this, but initialises W with N(0, 1), so each class
vector has norm about sqrt(d) (45 at d = 2048). The official code of Zhai & Wu
(azgo14/classification_metric_learning, metric_learning/modules/losses.py, ``NormSoftmaxLoss``)
initialises W like ``nn.Linear``: every entry uniform in [-1/sqrt(d), 1/sqrt(d)], norm about
sqrt(1/3) = 0.58. The loss value is the same for both (only W's direction counts), but the
gradient with respect to w_c scales as 1/|w_c|, so one SGD step at the paper's learning rate
turns the N(0, 1) weights about (45 / 0.58)^2 = 6000 times less. :class:`NormSoftmaxLoss`
is the library loss with the official initialisation.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from pytorch_metric_learning.losses import NormalizedSoftmaxLoss

from dmlbench.registry import register


def uniform_fan_in_(weight: torch.Tensor, fan_in: int) -> torch.Tensor:
    """In place: every entry uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)] (``nn.Linear``'s rule)."""
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


@register("loss", "NormSoftmaxLoss")
class NormSoftmaxLoss(NormalizedSoftmaxLoss):
    """``NormalizedSoftmaxLoss`` whose class weights W [embedding_size, num_classes] start
    uniform in +-1/sqrt(embedding_size), as in the paper's official code."""

    def __init__(
        self, num_classes: int, embedding_size: int, temperature: float = 0.05, **kwargs: Any
    ) -> None:
        kwargs.setdefault("weight_init_func", functools.partial(uniform_fan_in_, fan_in=embedding_size))
        super().__init__(
            num_classes=num_classes, embedding_size=embedding_size, temperature=temperature, **kwargs
        )
