"""Extension points of the training step, so that a paper's method is a plugin, not a fork.

A training plugin is a :class:`TrainingPlugin` subclass registered with ``@register("training_plugin")``
and named in config_loss_and_miners as ``training_plugins: {Name: {kwargs}}`` (constructor
arguments ``num_classes`` and ``embedding_size`` are filled in when it accepts them). Every
method has a do-nothing default, so a plugin overrides only what it needs and plugins compose.

Every hook that runs during training receives the :class:`StepContext` ``context``: the fold's
``models``, ``losses``, ``miners`` and ``settings``, ``forward(images)`` and ``run_losses(inputs)``
(the configured losses, mined and weighted, exactly as the trainer runs them). A plugin uses only
that, never the trainer behind it.

The four points (docs/extending.md has a longer example of each):

(a) ``make_views`` -- several views of the batch's embeddings (e.g. several dropout masks),
    and :class:`MultiViewDistance`, a pytorch-metric-learning distance whose matrix aggregates
    its base distance over the views (the unchanged loss consumes it)::

        def make_views(self, inputs, context):
            views = torch.stack([F.dropout(inputs.embeddings, 0.1) for _ in range(8)])
            return inputs.with_views(views)

(b) ``loss_inputs`` -- add or transform embedding-space samples and labels::

        def loss_inputs(self, inputs, context):
            noisy = inputs.embeddings + 0.01 * torch.randn_like(inputs.embeddings)
            return inputs.add_samples(noisy, inputs.labels)

(c) ``wrap_distance`` -- the distance (or similarity) a loss uses in training, and
    ``eval_similarity`` -- optionally, a pairwise score used for retrieval at test time::

        def wrap_distance(self, distance, loss_role):
            return MyLearnedDistance()          # any pytorch_metric_learning BaseDistance

(e) ``loss_terms`` -- extra loss terms (a regulariser, an auxiliary loss) added to the total::

        def loss_terms(self, inputs, context):
            return {"norm_reg": 1e-3 * inputs.embeddings.pow(2).sum(dim=1).mean()}

(d) ``modules`` -- extra trained modules; ``<name>`` is updated by ``optimizers.<name>_optimizer``
    (its own learning rate), with ``lr_schedulers.<name>_scheduler_by_epoch``,
    ``gradient_clippers.<name>_grad_clipper`` and warm-up ``frozen_for_epochs: {trunk: 1}``::

        def modules(self):
            return {"proxies": self.proxies}    # -> optimizers: {proxies_optimizer: {...}}

Order rules (what the trainer does, each step):

1. construction, once: ``wrap_distance`` for every loss with a ``distance``, plugins in config
   order (the last plugin's wrapper is the outermost), then ``setup`` of every plugin;
2. forward pass -> ``LossInputs(embeddings, labels, features)``;
3. ``loss_inputs`` of every plugin, in config order (samples are added before views exist);
4. ``make_views`` of every plugin, in config order; a later one sees the earlier one's views
   (views of views); whenever ``views`` is set, ``embeddings`` is its last view;
5.-6. ``context.run_losses(inputs)``: the miners mine ``inputs.miner_input()`` --
   ``mining_embeddings`` when a plugin set it (SDM: the clean embeddings), else ``embeddings`` (the
   last view) -- with their own, plain distance; then the losses run on ``embeddings`` with these
   inputs bound, so a :class:`MultiViewDistance` reads ``views`` and ``labels`` (see
   :func:`bound_loss_inputs`), each times its ``loss_weights`` entry;
7. ``loss_terms`` of every plugin, in config order: named extra terms added to the total.

So SDM (views) and DAS (samples) compose in either config order: DAS's extra samples get
dropout views too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import torch
from pytorch_metric_learning.distances import BaseDistance, CosineSimilarity, DotProductSimilarity, LpDistance
from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.training.settings import TrainerSettings


@dataclass
class LossInputs:
    """What the miners and losses of one training step receive.

    ``embeddings`` [N, D] and ``labels`` [N] are what the miners and losses see. ``views``
    [V, N, D], when a plugin made views, holds V versions of the same N samples and
    ``embeddings`` is ``views[-1]``. ``features`` are the trunk outputs of the original batch
    (not extended by added samples), ``images`` that batch's input images (for a plugin that runs
    the models again). ``mining_embeddings`` [N, D], when a plugin sets it, is what the miners
    mine instead of ``embeddings`` (e.g. the clean embeddings rather than a dropout view).
    """

    embeddings: Tensor
    labels: Tensor
    features: Tensor | None = None
    views: Tensor | None = None
    images: Tensor | None = None
    mining_embeddings: Tensor | None = None
    indices_tuple: Any = None  # from the miner; None = all pairs
    extras: dict[str, Any] = field(default_factory=dict)  # anything a plugin hands another

    def add_samples(self, embeddings: Tensor, labels: Tensor) -> LossInputs:
        """(b) A copy with ``embeddings`` [M, D] and ``labels`` [M] appended after the batch."""
        if self.views is not None:
            raise ValueError(
                "add_samples: these inputs already have views; add samples in loss_inputs "
                "(which runs before every make_views), not in make_views"
            )
        if (
            embeddings.ndim != 2
            or embeddings.shape[1] != self.embeddings.shape[1]
            or len(labels) != len(embeddings)
        ):
            raise ValueError(
                f"add_samples: expected embeddings [M, {self.embeddings.shape[1]}] and labels [M], "
                f"got {tuple(embeddings.shape)} and {tuple(labels.shape)}"
            )
        mining = self.mining_embeddings
        if mining is not None:  # added samples are mined as they are
            mining = torch.cat([mining, embeddings.to(mining.dtype)])
        return replace(
            self,
            embeddings=torch.cat([self.embeddings, embeddings.to(self.embeddings.dtype)]),
            labels=torch.cat([self.labels, labels.to(self.labels.device, self.labels.dtype)]),
            mining_embeddings=mining,
        )

    def miner_input(self) -> Tensor:
        """What the miners mine: ``mining_embeddings`` if a plugin set it, else ``embeddings``."""
        return self.embeddings if self.mining_embeddings is None else self.mining_embeddings

    def with_views(self, views: Tensor) -> LossInputs:
        """(a) A copy whose ``views`` are ``views`` [V, N, D] and whose ``embeddings`` is the last."""
        if views.ndim != 3 or views.shape[1:] != self.embeddings.shape:
            raise ValueError(
                f"with_views: expected views [V, {', '.join(map(str, self.embeddings.shape))}], "
                f"got {tuple(views.shape)}"
            )
        return replace(self, views=views, embeddings=views[-1])

    def view_stack(self) -> Tensor:
        """The views [V, N, D]; without views, the embeddings as the only view [1, N, D]."""
        return self.views if self.views is not None else self.embeddings.unsqueeze(0)


@runtime_checkable
class StepContext(Protocol):
    """What a training plugin's hooks see of the training step (the trainer implements it).

    Read-only: a plugin reads these and calls the two methods; it changes nothing here.
    """

    @property
    def models(self) -> Mapping[str, nn.Module]:
        """The fold's models by name: ``trunk``, ``embedder`` (the modules being trained)."""
        ...

    @property
    def losses(self) -> Mapping[str, nn.Module]:
        """The configured losses by role (``loss_funcs``), distances already wrapped by the plugins."""
        ...

    @property
    def miners(self) -> Mapping[str, Any]:
        """The configured miners by role (``mining_funcs``)."""
        ...

    @property
    def settings(self) -> TrainerSettings:
        """The fold's training settings (``seed``, ``loss_weights``, ``device``, ...)."""
        ...

    def forward(self, images: Tensor) -> tuple[Any, Tensor]:
        """Trunk features and float32 embeddings [B, D] of ``images``, as the step's own forward pass."""
        ...

    def run_losses(self, inputs: LossInputs) -> dict[str, Tensor]:
        """The configured losses on ``inputs``, by role: ``w_role * loss_role(embeddings, labels, tuples)``.

        Every miner mines ``inputs.miner_input()`` and its tuples are stored in
        ``inputs.indices_tuple`` (the last miner's are used; without miners the field stays as it
        is); the losses run with ``inputs`` bound (:func:`bound_loss_inputs`); ``w_role`` is
        ``settings.loss_weights[role]``, 1 when absent. The trainer's own losses are this call.
        """
        ...


class TrainingPlugin:
    """Base class of the training step's extension points; override what you need."""

    def modules(self) -> dict[str, nn.Module]:
        """(d) Trained modules this plugin adds, by name (each needs ``optimizers.<name>_optimizer``)."""
        return {}

    def wrap_distance(self, distance: Any, loss_role: str) -> Any:
        """(a)/(c) The distance object the loss ``loss_role`` uses in training (default: unchanged).

        Called once, at construction, for each loss that has a ``distance`` attribute.
        """
        return distance

    def setup(self, context: StepContext) -> None:
        """Called once, after every plugin's ``wrap_distance`` (e.g. to check what was wrapped)."""

    def loss_inputs(self, inputs: LossInputs, context: StepContext) -> LossInputs:
        """(b) Called after the forward pass, before any views: add or transform samples and labels."""
        return inputs

    def make_views(self, inputs: LossInputs, context: StepContext) -> LossInputs:
        """(a) Called after every plugin's ``loss_inputs``: return ``inputs.with_views(views)``."""
        return inputs

    def loss_terms(self, inputs: LossInputs, context: StepContext) -> dict[str, Tensor]:
        """(e) Extra loss terms by name (a regulariser, an auxiliary loss), added to the total.

        Called after the configured losses, with the same inputs they saw (samples added, views
        made, ``indices_tuple`` mined). Each term is logged under its name; a name that is already
        a loss role is an error. Weight a term inside the plugin (its own constructor argument).
        """
        return {}

    def eval_similarity(self) -> Callable[[Any, Any], Tensor] | None:
        """(c) A pairwise score for retrieval at test time, higher = more similar (the contract of
        :class:`dmlbench.evaluation.knn.Similarity`); ``None`` keeps the embedding dot product."""
        return None

    def on_epoch_end(self, epoch: int, context: StepContext) -> None:
        """Called after each training epoch."""

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint beyond ``modules()`` (e.g. memory banks)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


# ---------------------------------------------------------------------------- (a) views
_bound_inputs: ContextVar[LossInputs | None] = ContextVar("dmlbench_loss_inputs", default=None)


@contextlib.contextmanager
def bound_loss_inputs(inputs: LossInputs) -> Iterator[LossInputs]:
    """Within this block, :class:`MultiViewDistance` objects compute on ``inputs.views``."""
    token = _bound_inputs.set(inputs)
    try:
        yield inputs
    finally:
        _bound_inputs.reset(token)


def per_view_matrices(distance: BaseDistance, views: Tensor) -> Tensor:
    """``distance`` of each view [V, N, D] with itself: [V, N, N], ``M[v] == distance(views[v])``.

    Several views under the library's Lp, dot-product and cosine distances are computed in one
    batched operation (same normalisation, ``p`` and ``power``; equal up to rounding); one view,
    or any other distance, by calling ``distance`` view by view.
    """
    batched = type(distance) in (LpDistance, DotProductSimilarity, CosineSimilarity)
    if not batched or len(views) == 1 or views.dtype == torch.float16:
        return torch.stack([distance(view) for view in views])
    normalized = distance.maybe_normalize(views, dim=-1)
    if isinstance(distance, LpDistance):
        matrices = torch.cdist(normalized, normalized, p=distance.p)
    else:
        matrices = normalized @ normalized.transpose(1, 2)
    return matrices**distance.power if distance.power != 1 else matrices


class MultiViewDistance(BaseDistance):
    """(a) A pytorch-metric-learning distance that aggregates ``base`` over the bound views.

    When the loss asks for the matrix of the bound ``embeddings`` against themselves, this
    computes ``M_v = base(views[v])`` for every view v (``base`` normalises each view when it
    normalises) and returns ``aggregate(M [V, N, N], same_label [N, N])``. Any loss built on
    ``self.distance(embeddings)`` -- MS, contrastive, triplet, margin, ... -- then uses the
    aggregate unchanged. Without bound views (outside a training step) it is ``base``.
    ``is_inverted`` (similarity vs. distance) and therefore ``margin``/``smallest_dist`` follow
    ``base``. Subclasses implement :meth:`aggregate`. One loss has at most one of these in its
    chain of wrapped distances (two aggregations over the same views are not defined).
    """

    def __init__(self, base: BaseDistance, role: str = "loss") -> None:
        if not isinstance(base, BaseDistance):
            raise ConfigError(
                f"{role}: a view-aggregating distance needs a pytorch-metric-learning distance "
                f"to aggregate, got {type(base).__name__}"
            )
        inner = base
        while inner is not None:
            if isinstance(inner, MultiViewDistance):
                raise ConfigError(
                    f"loss_funcs.{role}: two training plugins aggregate this loss's distance over "
                    f"views ({type(inner).__name__} and {type(self).__name__}); keep one of them "
                    "for this loss (e.g. with the plugin's loss list)"
                )
            inner = getattr(inner, "base", None)
        super().__init__(
            normalize_embeddings=base.normalize_embeddings,
            p=base.p,
            power=base.power,
            is_inverted=base.is_inverted,
        )
        self.base = base
        self.role = role

    def forward(self, query_emb: Tensor, ref_emb: Tensor | None = None) -> Tensor:
        inputs = _bound_inputs.get()
        if inputs is None or inputs.views is None:
            return self.base(query_emb, ref_emb)
        if query_emb is not inputs.embeddings or (ref_emb is not None and ref_emb is not query_emb):
            raise ConfigError(
                f"loss_funcs.{self.role}: {type(self).__name__} aggregates the batch's pairs over views, but "
                "this loss compared other embeddings (e.g. proxies or a memory bank); use it with a pair- or "
                "triplet-based loss such as MultiSimilarityLoss, ContrastiveLoss, TripletMarginLoss, MarginLoss"
            )
        matrices = per_view_matrices(self.base, inputs.views)
        same_label = inputs.labels.unsqueeze(1) == inputs.labels.unsqueeze(0)
        return self.aggregate(matrices, same_label)

    def aggregate(self, matrices: Tensor, same_label: Tensor) -> Tensor:
        """The [N, N] matrix the loss sees, from the per-view matrices [V, N, N]."""
        raise NotImplementedError

    def compute_mat(self, query_emb: Tensor, ref_emb: Tensor) -> Tensor:
        return self.base.compute_mat(query_emb, ref_emb)

    def pairwise_distance(self, query_emb: Tensor, ref_emb: Tensor) -> Tensor:
        return self.base.pairwise_distance(query_emb, ref_emb)
