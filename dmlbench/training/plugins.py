"""Extension points of the training step.

A training plugin (``training_plugins: {Name: {kwargs}}`` in config_loss_and_miners, registered
with ``@register("hook")``) may override any of these methods; the trainer calls every plugin in
config order. Each method's default does nothing, so plugins compose (e.g. SDM with DAS).

(a) ``loss_inputs``: replace or extend what the losses see (several views of the embeddings,
    extra samples and labels); (b) ``wrap_distance``: a custom pairwise distance/similarity for
    the losses, e.g. aggregated over views; (c) ``eval_similarity``: a pairwise scoring function
    used at test time instead of the embedding dot product; (d) ``modules``: extra trained
    modules, each updated by the optimizer ``optimizers.<name>_optimizer`` (with its own learning
    rate, scheduler, clipping and ``frozen_for_epochs`` warm-up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import Tensor, nn


@dataclass
class LossInputs:
    """What the losses of one training step receive."""

    embeddings: Tensor                     # [B, D], what the miners and losses see
    labels: Tensor                         # [B]
    features: Tensor | None = None         # trunk output, before the embedder
    indices_tuple: Any = None              # from the miner, None until mined
    extras: dict[str, Any] = field(default_factory=dict)  # anything a plugin hands another


class TrainingPlugin:
    """Base class of the training step's extension points; override what you need."""

    def modules(self) -> dict[str, nn.Module]:
        """(d) Trained modules this plugin adds, by name."""
        return {}

    def setup(self, trainer: Any) -> None:
        """Called once after the models, losses and miners exist (e.g. to wrap loss distances)."""

    def loss_inputs(self, inputs: LossInputs, trainer: Any) -> LossInputs:
        """(a) Called after the forward pass, before mining: change what the losses see."""
        return inputs

    def wrap_distance(self, distance: Any, loss_role: str) -> Any:
        """(b) Return the distance object the loss ``loss_role`` should use."""
        return distance

    def eval_similarity(self) -> Callable[[Tensor, Tensor], Tensor] | None:
        """(c) A pairwise scoring function for retrieval at test time (higher = more similar)."""
        return None

    def on_epoch_end(self, epoch: int, trainer: Any) -> None:
        """Called after each training epoch."""

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint beyond ``modules()`` (e.g. memory banks)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
