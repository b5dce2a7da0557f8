"""DAS, densely-anchored sampling (Liu et al., ECCV 2022), as a training plugin.

Each training step (docs/methods/das.md):

1. the batch's embeddings, L2-normalised (``normalize``), update the frequency matrix with each
   sample's K largest dimensions, then every same-class difference enters its class's FIFO bank;
2. ``num_produce`` copies of the batch are produced: the class's K most frequent dimensions scaled
   by factors drawn from ``dfs_scale_range`` (DFS) plus ``mts_scale`` times a random entry of the
   class's bank (MTS), L2-normalised;
3. the copies are appended with their labels (extension point (b)), so the unchanged loss and
   miner see ``[e, e'_1, ..., e'_n]``; with SDM after it, each gets dropout views.

``original_loss_weight: w`` adds ``w * L(e)``, the configured losses on the original batch only
(the step context's ``run_losses``: mined and weighted as the trainer's own losses), as the extra
loss term ``das_original``. The official code's ``--aux_loss`` (total
``L(e) + a * L(all)``) is ``original_loss_weight: 1`` with ``loss_weights: {metric_loss: a}``.

Config::

    training_plugins:
      DAS: {dfs_num_scale: 8, dfs_scale_range: [0.99, 1.01], mts_scale: 0.01, bank_size: 10,
            num_produce: 3, detach: true}
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from dmlbench.errors import ConfigError
from dmlbench.plugins.das.state import DASState
from dmlbench.registry import register
from dmlbench.training.plugins import LossInputs, StepContext, TrainingPlugin
from dmlbench.training.seeding import derive_seed

_KEY = "training_plugins.DAS"
NUM_ORIGINAL = "das_num_original"


def _whole(name: str, value: Any, minimum: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or int(value) != value
        or value < minimum
    ):
        raise ConfigError(f"{_KEY}.{name}: expected a whole number >= {minimum}, got {value!r}")
    return int(value)


def _number(name: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{_KEY}.{name}: expected a number >= {minimum}, got {value!r}")
    return float(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{_KEY}.{name}: expected true or false, got {value!r}")
    return value


@register("training_plugin", "DAS")
class DAS(TrainingPlugin):
    """Densely-anchored sampling: extra anchors from DFS and MTS for any loss and miner.

    Args:
        num_classes, embedding_size: filled in by the runner (training classes, embedding dim D).
        dfs_num_scale: K, dimensions recorded per sample and scaled per produced anchor (K <= D).
        dfs_scale_range: [l, r), the DFS factors' uniform range.
        mts_scale: weight of the added bank entry.
        bank_size: differences kept per class (FIFO).
        num_produce: copies of the batch produced per step.
        detach: the produced anchors carry no gradient into the embeddings.
        normalize: DAS works on L2-normalised embeddings and normalises what it produces.
        original_loss_weight: if set, add ``w * L(original batch)`` as the loss term ``das_original``.
        seed: the generator's seed (default: derived from the run's fold seed).
    """

    def __init__(
        self,
        num_classes: int | None = None,
        embedding_size: int | None = None,
        dfs_num_scale: int = 4,
        dfs_scale_range: list[float] | tuple[float, float] = (0.5, 2.0),
        mts_scale: float = 0.01,
        bank_size: int = 10,
        num_produce: int = 3,
        detach: bool = False,
        normalize: bool = True,
        original_loss_weight: float | None = None,
        seed: int | None = None,
    ) -> None:
        if num_classes is None:
            raise ConfigError(
                f"{_KEY}: num_classes is required (the runner fills it in with the training classes)"
            )
        self.num_classes = _whole("num_classes", num_classes, 1)
        self.dfs_num_scale = _whole("dfs_num_scale", dfs_num_scale, 1)
        if not isinstance(dfs_scale_range, (list, tuple)) or len(dfs_scale_range) != 2:
            raise ConfigError(f"{_KEY}.dfs_scale_range: expected [low, high], got {dfs_scale_range!r}")
        low, high = (_number("dfs_scale_range", v, -float("inf")) for v in dfs_scale_range)
        if low > high:
            raise ConfigError(f"{_KEY}.dfs_scale_range: expected low <= high, got {list(dfs_scale_range)}")
        self.dfs_scale_range = (low, high)
        self.mts_scale = _number("mts_scale", mts_scale, -float("inf"))
        self.bank_size = _whole("bank_size", bank_size, 1)
        self.num_produce = _whole("num_produce", num_produce, 1)
        self.detach = _flag("detach", detach)
        self.normalize = _flag("normalize", normalize)
        self.original_loss_weight = (
            None if original_loss_weight is None else _number("original_loss_weight", original_loss_weight)
        )
        self.seed = None if seed is None else _whole("seed", seed, 0)
        self.embedding_size = None if embedding_size is None else _whole("embedding_size", embedding_size, 1)
        if self.embedding_size is not None:
            self._check_dimension(self.embedding_size)
        self._state: DASState | None = None
        self._run_seed = self.seed if self.seed is not None else 0

    def _check_dimension(self, dim: int) -> None:
        if self.dfs_num_scale > dim:
            raise ConfigError(
                f"{_KEY}.dfs_num_scale: K = {self.dfs_num_scale} is larger than the embedding "
                f"size {dim}; K dimensions are scaled per anchor, so choose K <= {dim}"
            )

    @property
    def state(self) -> DASState:
        """The frequency matrix, banks and generator (made on first use: D may come from the batch)."""
        if self._state is None:
            if self.embedding_size is None:
                raise RuntimeError("DAS: the embedding size is not known before the first batch")
            self._state = DASState(self.num_classes, self.embedding_size, self.bank_size, self._run_seed)
        return self._state

    # ------------------------------------------------------------------ extension points
    def setup(self, context: StepContext) -> None:
        if self.seed is None:
            self._run_seed = derive_seed(int(context.settings.seed), "DAS")
            if self._state is not None:
                self._state.reseed(self._run_seed)

    def loss_inputs(self, inputs: LossInputs, context: StepContext) -> LossInputs:
        embeddings, labels = inputs.embeddings, inputs.labels
        if self.embedding_size is None:
            self._check_dimension(embeddings.shape[1])
            self.embedding_size = int(embeddings.shape[1])
        if embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"DAS: expected embeddings of size {self.embedding_size}, got {embeddings.shape[1]}"
            )
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(
                f"DAS: labels must be training labels 0..{self.num_classes - 1} (one bank per class), "
                f"got {int(labels.min())}..{int(labels.max())}"
            )
        base = F.normalize(embeddings, dim=1) if self.normalize else embeddings
        self.state.observe(base, labels, self.dfs_num_scale)
        copies = self.state.produce(
            base,
            labels,
            self.dfs_num_scale,
            self.dfs_scale_range,
            self.mts_scale,
            self.num_produce,
            self.normalize,
            self.detach,
        )
        extended = inputs.add_samples(torch.cat(copies), labels.repeat(self.num_produce))
        return replace(extended, extras={**inputs.extras, NUM_ORIGINAL: len(labels)})

    def loss_terms(self, inputs: LossInputs, context: StepContext) -> dict[str, Tensor]:
        if self.original_loss_weight is None:
            return {}
        count = inputs.extras[NUM_ORIGINAL]
        views = None if inputs.views is None else inputs.views[:, :count]
        original = replace(  # the batch without the produced copies; mined on its own embeddings
            inputs,
            labels=inputs.labels[:count],
            views=views,
            indices_tuple=None,
            mining_embeddings=None,
            embeddings=inputs.embeddings[:count] if views is None else views[-1],
        )
        total = cast(Tensor, sum(context.run_losses(original).values()))
        return {"das_original": self.original_loss_weight * total}

    def state_dict(self) -> dict[str, Any]:
        return self.state.state_dict() if self.embedding_size is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if self.embedding_size is None:
            self.embedding_size = int(state["frequency"].shape[1])
        self.state.load_state_dict(state)
