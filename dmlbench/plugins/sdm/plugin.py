"""SDM, sensitivity-aware distance measurement, as a training plugin (docs/methods/sdm.md).

Each step, the batch's embeddings get ``num_views`` dropout masks (p = ``dropout``, train
mode) -- the views; every pair's distance the loss sees is the soft worst case over the views
(:mod:`dmlbench.plugins.sdm.aggregation`, temperature ``alpha``), computed by the loss's own distance on
each view (which L2-normalises it). The loss itself (MS, contrastive, triplet, margin, ...) is
the unchanged pytorch-metric-learning class. Test time is unchanged.

Trunk passes. The official code (iccv-sources/iccv-SDM, ``MetricLossOnly.calculate_loss``) runs
the models 8 times per batch and takes 8 embedding-dropout masks of each pass: 64 views. Its
BN-Inception has a ``Dropout2d(p=0.1)`` after the first convolution that stays active in training
(only BatchNorm is frozen), so the 8 passes differ. ``trunk_passes: 8`` does the same (the views
of pass 1 first; ``num_views`` in total, ``num_views / trunk_passes`` masks per pass); with the
trunk option ``BNInception: {conv1_dropout: 0.1}`` it is the official computation.
``trunk_passes: 1`` takes all masks of the one pass the trainer made: it skips the trunk-dropout
variation between passes (identical to 8 passes only for a trunk without active dropout) and
costs 1/8 of the trunk compute.

Mining. The official code mines each pass's embeddings before the embedding dropout and keeps
the last pass's tuples: ``mine_on: clean`` (the default) hands the miners the last pass's clean
embeddings; ``mine_on: last_view`` hands them the last dropout view instead.

Config (the *_sdm exp_configs)::

    training_plugins:
      SDM: {num_views: 64, trunk_passes: 8, dropout: 0.05, alpha: 32, mine_on: clean}
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from dmlbench.errors import ConfigError
from dmlbench.plugins.sdm.aggregation import SoftWorstCaseDistance
from dmlbench.registry import register
from dmlbench.training.plugins import LossInputs, StepContext, TrainingPlugin


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
        num_views: dropout masks per step in all (per existing view, if another plugin made views).
        dropout: the masks' drop probability.
        alpha: temperature of the soft maximum / minimum over views.
        losses: loss roles to apply SDM to (default: every loss that has a ``distance``).
        trunk_passes: forward passes of trunk and embedder per step (the official code: 8); each
            pass gets ``num_views / trunk_passes`` masks. 1 reuses the trainer's one pass.
        mine_on: ``clean`` (the last pass's embeddings before dropout; official) or ``last_view``.
    """

    def __init__(
        self,
        num_views: int = 64,
        dropout: float = 0.05,
        alpha: float = 32.0,
        losses: list[str] | None = None,
        trunk_passes: int = 1,
        mine_on: str = "clean",
    ) -> None:
        if int(num_views) != num_views or num_views < 1:
            raise ConfigError(
                f"training_plugins.SDM.num_views: expected a whole number >= 1, got {num_views!r}"
            )
        if not 0 <= float(dropout) < 1:
            raise ConfigError(f"training_plugins.SDM.dropout: expected 0 <= dropout < 1, got {dropout!r}")
        if float(alpha) < 0:
            raise ConfigError(f"training_plugins.SDM.alpha: expected a temperature >= 0, got {alpha!r}")
        if losses is not None and (isinstance(losses, str) or not isinstance(losses, list)):
            raise ConfigError(
                f"training_plugins.SDM.losses: expected a list of loss roles, e.g. [metric_loss], "
                f"got {losses!r}"
            )
        if int(trunk_passes) != trunk_passes or trunk_passes < 1 or num_views % trunk_passes:
            raise ConfigError(
                f"training_plugins.SDM.trunk_passes: expected a whole number >= 1 that divides "
                f"num_views ({num_views}), got {trunk_passes!r} (the official code: 64 views, 8 passes)"
            )
        if mine_on not in ("clean", "last_view"):
            raise ConfigError(
                f"training_plugins.SDM.mine_on: expected clean (official) or last_view, got {mine_on!r}"
            )
        self.num_views = int(num_views)
        self.dropout = float(dropout)
        self.alpha = float(alpha)
        self.losses = None if losses is None else [str(role) for role in losses]
        self.trunk_passes = int(trunk_passes)
        self.mine_on = mine_on
        self.wrapped_roles: list[str] = []

    def wrap_distance(self, distance: Any, loss_role: str) -> Any:
        if self.losses is not None and loss_role not in self.losses:
            return distance
        if distance is None:
            if self.losses is not None:
                raise ConfigError(
                    f"training_plugins.SDM.losses: loss_funcs.{loss_role} has no distance to aggregate"
                )
            return distance
        self.wrapped_roles.append(loss_role)
        return SoftWorstCaseDistance(distance, alpha=self.alpha, role=loss_role)

    def setup(self, context: StepContext) -> None:
        roles = list(context.losses)
        unknown = [role for role in self.losses or [] if role not in roles]
        if unknown:
            raise ConfigError(
                f"training_plugins.SDM.losses: no loss {unknown[0]!r} in loss_funcs "
                f"(losses: {', '.join(roles)})"
            )
        if not self.wrapped_roles:
            raise ConfigError(
                "training_plugins.SDM: no loss in loss_funcs has a pytorch-metric-learning distance "
                "to aggregate over views; use e.g. MultiSimilarityLoss, ContrastiveLoss, "
                "TripletMarginLoss or MarginLoss"
            )
        trunk = context.models.get("trunk")
        if (
            self.trunk_passes == 1
            and trunk is not None
            and any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 for m in trunk.modules())
        ):
            warnings.warn(
                "training_plugins.SDM.trunk_passes: 1 takes every dropout view of one trunk pass although "
                "the trunk has dropout: it skips the variation between trunk passes that the official "
                "code's 8 passes have (trunk_passes: 8)",
                stacklevel=2,
            )

    def make_views(self, inputs: LossInputs, context: StepContext) -> LossInputs:
        masks = self.num_views // self.trunk_passes
        stack = inputs.view_stack()
        views = [dropout_views(stack, masks, self.dropout)]
        for _ in range(self.trunk_passes - 1):  # pass, its masks, next pass, ...: the official order
            stack = self._extra_pass(inputs, context)
            views.append(dropout_views(stack, masks, self.dropout))
        clean = stack[-1]
        inputs = inputs.with_views(torch.cat(views))
        if self.mine_on == "clean":
            inputs = replace(inputs, mining_embeddings=clean)
        return inputs

    def _extra_pass(self, inputs: LossInputs, context: StepContext) -> Tensor:
        """One more forward pass of trunk and embedder over the batch's images, as a view [1, N, D]."""
        if inputs.images is None or inputs.views is not None or len(inputs.images) != len(inputs.embeddings):
            raise ConfigError(
                f"training_plugins.SDM.trunk_passes: {self.trunk_passes} passes run the models again on the batch's "
                "images, so they need the batch as the trainer made it (no samples or views added by another "
                "plugin first); use trunk_passes: 1 with such plugins"
            )
        _, embeddings = context.forward(inputs.images)
        return embeddings.to(inputs.embeddings.dtype).unsqueeze(0)
