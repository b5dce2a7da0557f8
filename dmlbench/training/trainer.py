"""The training loop of one fold: epochs of ``iterations_per_epoch`` steps, validation every
``save_interval`` epochs, model selection on the validation metric, early stopping on
``patience``, and checkpoints (``latest.pt`` every epoch, ``best.pt`` at each improvement).

Randomness is a function of (fold seed, epoch): each epoch reseeds every generator, so a run
resumed from ``latest.pt`` continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.models.batchnorm import freeze_batchnorm_statistics
from dmlbench.models.multilevel import as_float
from dmlbench.progress import advance, progress
from dmlbench.training import checkpoint
from dmlbench.training.compiled import compiled_models
from dmlbench.training.components import OptimizationPart
from dmlbench.training.plugin_set import PluginSet, as_plugin_set
from dmlbench.training.plugins import LossInputs, TrainingPlugin, bound_loss_inputs
from dmlbench.training.seeding import derive_seed, seed_everything
from dmlbench.training.settings import TrainerSettings
from dmlbench.training.step_log import LossBuffer

#: validate(models, epoch) -> {metric name: value}
Validator = Callable[[dict[str, nn.Module], int], dict[str, float]]


#: The start of the stop reason of a fold that trained its whole ``num_epochs_train``.
REACHED = "reached num_epochs_train ="


@dataclass
class TrainingState:
    """Where a fold's training stands; saved in every checkpoint."""

    epoch: int = 0
    best_epoch: int = 0
    best_score: float = -math.inf
    finished: bool = False
    stop_reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per validation


class Trainer:
    """Trains one fold. ``parts`` are the optimised modules (models, losses with parameters,
    plugin modules); ``models`` must include ``trunk`` and ``embedder``."""

    def __init__(
        self,
        models: dict[str, nn.Module],
        losses: dict[str, nn.Module],
        miners: dict[str, Any],
        plugins: PluginSet | list[TrainingPlugin],
        parts: dict[str, OptimizationPart],
        loader_factory: Callable[[int], torch.utils.data.DataLoader],
        validator: Validator,
        settings: TrainerSettings,
        checkpoint_dir: Path,
        on_log: Callable[[str, dict[str, float], int], None] | None = None,
        progress_label: str = "",
    ) -> None:
        self.models = models
        self.losses = losses
        self.miners = miners
        self.plugins = as_plugin_set(plugins)
        self.parts = parts
        self.loader_factory = loader_factory
        self.validator = validator
        self.settings = settings
        self.checkpoint_dir = Path(checkpoint_dir)
        self.on_log = on_log or (lambda group, values, step: None)
        self.progress_label = progress_label
        self.state = TrainingState()
        self.forward_models = compiled_models(models, settings.compile_models)  # = models unless compiled
        self.data_parallel: Any = None  # dmlbench.training.distributed.attach sets it under torchrun
        precision = settings.mixed_precision
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[precision]
        self.scaler = torch.amp.GradScaler(enabled=precision == "fp16" and settings.device.type == "cuda")
        self.plugins.wrap_distances(losses)  # (a)/(c): plugins in config order, the last one outermost
        self.plugins.setup(self)

    # ----------------------------------------------------------------- checkpoints
    @property
    def latest_path(self) -> Path:
        return self.checkpoint_dir / "latest.pt"

    @property
    def best_path(self) -> Path:
        return self.checkpoint_dir / "best.pt"

    def _model_states(self) -> dict[str, Any]:
        return {name: module.state_dict() for name, module in self.all_modules().items()}

    def all_modules(self) -> dict[str, nn.Module]:
        modules = dict(self.models)
        modules.update({name: part.module for name, part in self.parts.items()})
        return modules

    def save_latest(self) -> None:
        checkpoint.save_atomic(
            {
                "models": self._model_states(),
                "optimizers": {name: part.optimizer.state_dict() for name, part in self.parts.items()},
                "schedulers": {
                    name: {when: s.state_dict() for when, s in part.schedulers.items()}
                    for name, part in self.parts.items()
                },
                "plugins": self.plugins.state_dicts(),
                "grad_scaler": self.scaler.state_dict(),
                "state": self.state.__dict__,
            },
            self.latest_path,
            keep_previous=True,
        )

    def save_best(self) -> None:
        checkpoint.save_atomic(
            {
                "models": self._model_states(),
                "plugins": self.plugins.state_dicts(),
                "epoch": self.state.epoch,
                "score": self.state.best_score,
            },
            self.best_path,
        )

    def resume(self, from_best: bool = False) -> bool:
        """Load ``latest.pt`` if it exists; returns whether it did.

        ``from_best``: then rewind to the best epoch (models from ``best.pt``, validation history cut
        there) and train on from it, e.g. after changing the schedule with
        ``--merge_argparse_when_resuming``.
        """
        if not self.latest_path.exists():
            return False
        saved = checkpoint.load_latest(self.latest_path, self.settings.device)
        self._load_modules(saved)
        for name, part in self.parts.items():
            part.optimizer.load_state_dict(saved["optimizers"][name])
            for when, scheduler in part.schedulers.items():
                scheduler.load_state_dict(saved["schedulers"][name][when])
        self.scaler.load_state_dict(saved["grad_scaler"])
        self.state = TrainingState(**saved["state"])
        if from_best and self.best_path.exists():
            self._load_modules(checkpoint.load(self.best_path, self.settings.device))
            self.state.epoch = self.state.best_epoch
            self.state.history = [row for row in self.state.history if row["epoch"] <= self.state.best_epoch]
            self.state.finished = False
            self.state.stop_reason = ""
        self._follow_epoch_budget()
        return True

    def _follow_epoch_budget(self) -> None:
        """A saved state against a changed ``num_epochs_train``: a fold that finished by reaching a
        smaller one trains on to the new one (its schedulers, optimizer state and patience count
        continue from the saved epoch); a fold that has trained past a lowered one is finished
        there. An early stop stays a stop."""
        state, budget = self.state, self.settings.num_epochs
        if state.finished and state.stop_reason.startswith(REACHED) and state.epoch < budget:
            state.finished, state.stop_reason = False, ""
        elif not state.finished and state.epoch >= budget > 0:
            state.finished = True
            state.stop_reason = f"{REACHED} {budget} (lowered on resume after epoch {state.epoch})"

    def _load_modules(self, saved: dict[str, Any]) -> None:
        """Module weights and plugin states from a checkpoint (latest or best)."""
        checkpoint.load_models(saved, self.all_modules())
        self.plugins.load_states(saved)

    # ----------------------------------------------------------------- the loop
    def train(self) -> TrainingState:
        """Train until ``num_epochs`` or early stopping; returns the final state."""
        settings = self.settings
        if self.state.finished:
            return self.state
        if self.state.epoch == 0 and not self.state.history:
            self._validate(epoch=0)  # the untrained model is the first candidate for "best"
            self.save_latest()
        while self.state.epoch < settings.num_epochs:
            epoch = self.state.epoch + 1
            self._train_epoch(epoch)
            self.state.epoch = epoch
            if epoch % settings.save_interval == 0 or epoch == settings.num_epochs:
                self._validate(epoch)
                if epoch - self.state.best_epoch > settings.patience:
                    self.state.finished = True
                    self.state.stop_reason = (
                        f"early stop: no improvement in {settings.metric_for_best} since epoch "
                        f"{self.state.best_epoch} (patience {settings.patience})"
                    )
            if epoch == settings.num_epochs and not self.state.finished:
                self.state.finished = True
                self.state.stop_reason = f"{REACHED} {settings.num_epochs}"
            self.save_latest()
            if self.state.finished:
                break
        return self.state

    def _validate(self, epoch: int) -> None:
        scores = self.validator(self.models, epoch)
        if not scores:  # no validation split: no model selection, the latest model is kept
            self.state.best_epoch = epoch
            self.save_best()
            return
        score = float(scores[self.settings.metric_for_best])
        self.state.history.append({"epoch": epoch, **scores})
        self.on_log("val", scores, epoch)
        for part in self.parts.values():
            if "plateau" in part.schedulers:
                part.schedulers["plateau"].step(score)
        if score > self.state.best_score:
            self.state.best_score = score
            self.state.best_epoch = epoch
            self.save_best()

    def _set_train_mode(self) -> None:
        for module in self.all_modules().values():
            module.train()
        if self.settings.freeze_trunk_batchnorm:
            freeze_batchnorm_statistics(self.models["trunk"])

    def _frozen_parts(self, epoch: int) -> list[OptimizationPart]:
        return [part for part in self.parts.values() if epoch <= part.frozen_for_epochs]

    def _train_epoch(self, epoch: int) -> None:
        settings = self.settings
        seed_everything(derive_seed(settings.seed, "epoch", epoch))
        self._set_train_mode()
        frozen = self._frozen_parts(epoch)
        for part in self.parts.values():
            if part.restart_at_epoch == epoch:  # the warm-up ended: a fresh optimizer state
                part.optimizer.state.clear()
        restore = [(p, p.requires_grad) for part in frozen for p in part.module.parameters()]
        for parameter, _ in restore:
            parameter.requires_grad_(False)
        loader = self.loader_factory(epoch)
        batches = iter(loader)
        bar = progress(total=settings.iterations_per_epoch, desc=f"{self.progress_label} epoch {epoch}")
        buffer = LossBuffer(self.on_log, bar, epoch)  # loss values read every 10 steps, not every step
        try:
            for iteration in range(settings.iterations_per_epoch):
                try:
                    images, labels = next(batches)
                except StopIteration:
                    batches = iter(loader)
                    images, labels = next(batches)
                losses = self._step(images, labels, frozen)
                buffer.add(losses, (epoch - 1) * settings.iterations_per_epoch + iteration)
                advance(bar)  # the bar moves per batch; its loss postfix changes at each buffer read
            buffer.flush()
        finally:
            bar.close()
            for parameter, requires_grad in restore:
                parameter.requires_grad_(requires_grad)
        for part in self.parts.values():
            # counts epochs, frozen or not (every part decays on schedule), from the end of the
            # warm-up with lr_schedulers_wait_for_warmup
            if "epoch" in part.schedulers and epoch > part.epoch_schedulers_wait:
                part.schedulers["epoch"].step()
        self.plugins.on_epoch_end(epoch, self)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.settings.device.type, dtype=self.autocast_dtype)

    def forward(self, images: Tensor) -> tuple[Any, Tensor]:
        """Trunk features (a tensor, or a multi-level trunk's tuple of maps) and embeddings of a
        batch (float32)."""
        with self._autocast():
            features = self.forward_models["trunk"](images)
            embeddings = self.forward_models["embedder"](features)
        return as_float(features), embeddings.float()

    def run_losses(self, inputs: LossInputs) -> dict[str, Tensor]:
        """The configured losses on ``inputs``, weighted, by role (:meth:`StepContext.run_losses`):
        every miner mines ``inputs.miner_input()`` into ``inputs.indices_tuple``, then
        ``loss_weights[role] * loss(embeddings, labels, indices_tuple)`` with the inputs bound for
        view-aggregating distances."""
        for miner in self.miners.values():
            inputs.indices_tuple = miner(inputs.miner_input(), inputs.labels)
        weights = self.settings.loss_weights
        with bound_loss_inputs(inputs):
            return {
                role: float(weights.get(role, 1.0))
                * loss(inputs.embeddings, inputs.labels, inputs.indices_tuple)
                for role, loss in self.losses.items()
            }

    def compute_losses(self, inputs: LossInputs) -> dict[str, Tensor]:
        """Every loss, weighted, after the plugins changed what the losses see (order rules in
        :mod:`dmlbench.training.plugins`): (b) samples, (a) views, :meth:`run_losses` (mining on
        ``inputs.miner_input()``, the losses with the inputs bound for view-aggregating distances),
        then (e) the plugins' extra loss terms."""
        for plugin in self.plugins:
            inputs = plugin.loss_inputs(inputs, self)
        for plugin in self.plugins:
            inputs = plugin.make_views(inputs, self)
        losses = self.run_losses(inputs)
        for plugin in self.plugins:
            for name, term in plugin.loss_terms(inputs, self).items():
                if name in losses:
                    raise ValueError(
                        f"{type(plugin).__name__}.loss_terms: the term name {name!r} is already "
                        f"used by {'a loss' if name in self.losses else 'another plugin'}; pick another"
                    )
                losses[name] = term
        if not losses:
            raise ConfigError(
                "nothing to train on: loss_funcs is empty and no training plugin added a loss term"
            )
        return losses

    def _step(self, images: Tensor, labels: Tensor, frozen: list[OptimizationPart]) -> dict[str, Tensor]:
        device = self.settings.device
        images = images.to(device, non_blocking=True)
        if self.settings.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(device, non_blocking=True)
        active = [part for part in self.parts.values() if part not in frozen]
        for part in self.parts.values():
            part.optimizer.zero_grad(set_to_none=True)
        features, embeddings = self.forward(images)
        inputs = LossInputs(embeddings=embeddings, labels=labels, features=features, images=images)
        losses = (
            self.compute_losses(inputs)
            if self.data_parallel is None
            else self.data_parallel.losses(self, inputs)
        )
        total = cast(
            Tensor, sum(losses.values())
        )  # finiteness is checked when the values are read (LossBuffer)
        self.scaler.scale(total).backward()
        if self.data_parallel is not None:
            self.data_parallel.average_gradients()
        for part in active:
            if part.clip is not None:
                self.scaler.unscale_(part.optimizer)
                torch.nn.utils.clip_grad_norm_(part.module.parameters(), **part.clip)
            self.scaler.step(part.optimizer)
            if "iteration" in part.schedulers:
                part.schedulers["iteration"].step()
        self.scaler.update()
        return {role: value.detach() for role, value in losses.items()}
