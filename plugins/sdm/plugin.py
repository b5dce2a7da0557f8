"""SDM, sensitivity-aware distance measurement, as a training plugin (docs/methods/sdm.md).

Each step, the batch's embeddings get ``num_views`` dropout masks (p = ``dropout``, train
mode) -- the views; every pair's distance the loss sees is the soft worst case over the views
(:mod:`plugins.sdm.aggregation`, temperature ``alpha``), computed by the loss's own distance on
each view (which L2-normalises it). The loss itself (MS, contrastive, triplet, margin, ...) is
the unchanged pytorch-metric-learning class; a miner mines the last view with its own plain
distance. Test time is unchanged.

The paper's code ran 8 forward passes with 8 dropout masks each (64 views). With frozen
BatchNorm and no dropout in the trunk the 8 passes give the same embeddings, so 64 masks on one
pass are the same computation (same loss, same gradients) at 1/8 of the trunk cost.

Config::

    training_plugins:
      SDM: {num_views: 64, dropout: 0.05, alpha: 32}
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dmlbench.errors import ConfigError
from dmlbench.registry import register
from dmlbench.training.plugins import LossInputs, TrainingPlugin
from plugins.sdm.aggregation import SoftWorstCaseDistance


def dropout_views(views: Tensor, masks_per_view: int, p: float) -> Tensor:
    """``masks_per_view`` independent dropout masks of each view [V, N, D] -> [V * masks, N, D]
    (the masks of view 0 first). ``p == 0`` copies the views unchanged."""
    repeated = views.unsqueeze(1).expand(-1, masks_per_view, -1, -1)
    if p > 0:
        repeated = torch.nn.functional.dropout(repeated.contiguous(), p=p, training=True)
    return repeated.reshape(-1, *views.shape[1:])


@register("training_plugin", "SDM")
class SDM(TrainingPlugin):
    """Dropout views + soft worst-case pair distances for every loss with a distance.

    Args:
        num_views: dropout masks per step (per existing view, if another plugin made views).
        dropout: the masks' drop probability.
        alpha: temperature of the soft maximum / minimum over views.
        losses: loss roles to apply SDM to (default: every loss that has a ``distance``).
    """

    def __init__(self, num_views: int = 64, dropout: float = 0.05, alpha: float = 32.0,
                 losses: list[str] | None = None) -> None:
        if int(num_views) != num_views or num_views < 1:
            raise ConfigError(f"training_plugins.SDM.num_views: expected a whole number >= 1, got {num_views!r}")
        if not 0 <= float(dropout) < 1:
            raise ConfigError(f"training_plugins.SDM.dropout: expected 0 <= dropout < 1, got {dropout!r}")
        if float(alpha) < 0:
            raise ConfigError(f"training_plugins.SDM.alpha: expected a temperature >= 0, got {alpha!r}")
        if losses is not None and (isinstance(losses, str) or not isinstance(losses, list)):
            raise ConfigError(f"training_plugins.SDM.losses: expected a list of loss roles, e.g. [metric_loss], "
                              f"got {losses!r}")
        self.num_views = int(num_views)
        self.dropout = float(dropout)
        self.alpha = float(alpha)
        self.losses = None if losses is None else [str(role) for role in losses]
        self.wrapped_roles: list[str] = []

    def wrap_distance(self, distance: Any, loss_role: str) -> Any:
        if self.losses is not None and loss_role not in self.losses:
            return distance
        if distance is None:
            if self.losses is not None:
                raise ConfigError(f"training_plugins.SDM.losses: loss_funcs.{loss_role} has no distance to aggregate")
            return distance
        self.wrapped_roles.append(loss_role)
        return SoftWorstCaseDistance(distance, alpha=self.alpha, role=loss_role)

    def setup(self, trainer: Any) -> None:
        roles = list(getattr(trainer, "losses", {}))
        unknown = [role for role in self.losses or [] if role not in roles]
        if unknown:
            raise ConfigError(f"training_plugins.SDM.losses: no loss {unknown[0]!r} in loss_funcs "
                              f"(losses: {', '.join(roles)})")
        if not self.wrapped_roles:
            raise ConfigError("training_plugins.SDM: no loss in loss_funcs has a pytorch-metric-learning distance "
                              "to aggregate over views; use e.g. MultiSimilarityLoss, ContrastiveLoss, "
                              "TripletMarginLoss or MarginLoss")

    def make_views(self, inputs: LossInputs, trainer: Any) -> LossInputs:
        return inputs.with_views(dropout_views(inputs.view_stack(), self.num_views, self.dropout))
