"""Train one fold of an experiment: build its models, losses, miners, plugins and optimizers from
the config, wire the data loader, the validation and the training log into a :class:`Trainer`,
resume if asked, and train.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from dmlbench.config.defaults import setting
from dmlbench.data.base import TransformedSubset
from dmlbench.data.folds import FoldData
from dmlbench.evaluation import protocol
from dmlbench.evaluation.protocol import EvaluationSettings
from dmlbench.records.store import RecordStore
from dmlbench.records.training_log import TrainingLog
from dmlbench.training import distributed
from dmlbench.training.components import (
    build_losses,
    build_miners,
    build_optimization,
    build_sampler,
    trainable_parameters,
)
from dmlbench.training.plugin_set import PluginSet
from dmlbench.training.seeding import derive_seed
from dmlbench.training.trainer import Trainer, TrainerSettings
from dmlbench.vocabulary import MAIN_METRICS, TRAINED, UNTRAINED_TRUNK_AND_EMBEDDER


class FoldEnvironment(Protocol):
    """What training a fold reads of an experiment (:class:`dmlbench.runner.Experiment` is one):
    the flat config, the device, the evaluation settings (validation), where the fold's
    TensorBoard log and checkpoints go, the record store, and how to build the fold's models,
    samples and seed."""

    @property
    def settings(self) -> dict[str, Any]: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def evaluation(self) -> EvaluationSettings: ...
    @property
    def experiment_dir(self) -> Path: ...
    @property
    def store(self) -> RecordStore: ...
    def build_models(self, fold: FoldData) -> dict[str, nn.Module]: ...
    def subset(
        self, fold: FoldData, split: str, trunk: nn.Module, train: bool = False
    ) -> TransformedSubset: ...
    def plugin_context(self, fold: FoldData, models: dict[str, nn.Module]) -> dict[str, Any]: ...
    def fold_seed(self, fold: FoldData) -> int: ...
    def checkpoint_dir(self, fold: FoldData) -> Path: ...


def trainer_settings(settings: dict[str, Any], device: torch.device, seed: int) -> TrainerSettings:
    """The trainer's settings from the flat config (defaults from the built-in default.yaml files)."""
    return TrainerSettings(
        num_epochs=int(settings["num_epochs_train"]),
        iterations_per_epoch=int(settings["iterations_per_epoch"]),
        save_interval=int(settings["save_interval"]),
        patience=int(settings["patience"]),
        device=device,
        seed=seed,
        metric_for_best=settings["eval_metric_for_best_epoch"],
        freeze_trunk_batchnorm=bool(setting(settings, "freeze_trunk_batchnorm")),
        mixed_precision=setting(settings, "mixed_precision"),
        channels_last=bool(setting(settings, "channels_last")),
        loss_weights=dict(setting(settings, "loss_weights") or {}),
        compile_models=setting(settings, "compile_models") or False,
    )


def fast_path_usable(settings: dict[str, Any], device: torch.device, train_set: TransformedSubset) -> bool:
    """``fast_data_path: true`` on a CUDA device, and a data set of JPEG files it can serve."""
    if not setting(settings, "fast_data_path"):
        return False
    from dmlbench.data.fast import fast_loader_available

    reason = "it needs a CUDA device" if device.type != "cuda" else fast_loader_available(train_set)
    reason = reason or (
        "torchrun: each process loads its slice of the batch" if distributed.active() else None
    )
    if reason:
        tqdm.write(f"fast_data_path: using the PIL DataLoader instead ({reason})")
    return reason is None


def make_loader_factory(
    settings: dict[str, Any], device: torch.device, fold_seed: int, train_set: TransformedSubset
) -> Any:
    """``epoch -> batches``: a new sampler and generator each epoch, seeded by (fold seed, epoch)."""
    batch_size = int(settings["batch_size"])
    iterations = int(settings["iterations_per_epoch"])
    workers = int(setting(settings, "dataloader_num_workers"))
    channels_last = bool(setting(settings, "channels_last"))
    build_sampler(settings["sampler"], train_set.labels, batch_size, iterations, train_set)  # fail early
    use_fast_path = fast_path_usable(settings, device, train_set)

    def loader_factory(epoch: int) -> Any:
        # A new sampler each epoch: samplers keep state between epochs (pytorch-metric-learning's
        # MPerClassSampler shuffles its class list in place), which would make a resumed run differ.
        sampler = build_sampler(settings["sampler"], train_set.labels, batch_size, iterations, train_set)
        generator = torch.Generator().manual_seed(
            derive_seed(
                fold_seed,
                "loader",
                epoch,
                *([distributed.rank()] if distributed.active() else []),
            )
        )
        if use_fast_path:
            from dmlbench.data.fast import PillowBatchLoader

            return PillowBatchLoader(
                train_set,
                batch_size=batch_size,
                sampler=sampler,
                drop_last=True,
                device=device,
                generator=generator,
                channels_last=channels_last,
            )
        return torch.utils.data.DataLoader(
            train_set,
            **distributed.loader_batching(sampler, batch_size),
            num_workers=workers,
            pin_memory=device.type == "cuda",
            generator=generator,
        )

    return loader_factory


#: The ``mode`` of accuracies recorded for the other splits of ``splits_to_eval`` during training
#: (kept apart from the test's ``fold`` rows).
DURING_TRAINING = "during_training"


def make_validator(
    env: FoldEnvironment,
    scheme: str,
    val_set: TransformedSubset | None,
    plugins: PluginSet,
    others: dict[str, dict[str, TransformedSubset]] | None = None,
) -> Any:
    """``(models, epoch) -> metrics`` on the val split, scored like the test (same similarity
    rule); each validation is recorded in ``env.store`` (trained status; epoch 0: the initial
    models). The splits of ``others`` (``{split: {"self": set}}`` or ``{"query": .., "gallery": ..}``:
    the other splits of ``splits_to_eval``, as powerful-benchmarker's tester during training) are
    scored and recorded at the same epochs (mode ``during_training``); only val selects the best."""

    def validator(current: dict[str, nn.Module], epoch: int) -> dict[str, float]:
        settings, device = env.evaluation, env.device
        status = TRAINED if epoch > 0 else UNTRAINED_TRUNK_AND_EMBEDDER
        for split, sets in (others or {}).items():
            embedded = {
                name: protocol.embed(
                    settings, device, current["trunk"], current["embedder"], subset, f"{scheme} {split}"
                )
                for name, subset in sets.items()
            }
            scores = protocol.score_sets(settings, device, embedded, similarity=plugins.similarity())
            env.store.add_accuracies(scheme, split, status, DURING_TRAINING, epoch, scores)
            _show(scheme, epoch, split, scores)
        if val_set is None:
            return {}  # no validation split: the trainer keeps the latest model
        embeddings, labels = protocol.embed(
            settings, device, current["trunk"], current["embedder"], val_set, f"{scheme} val"
        )
        metrics = protocol.score(settings, device, embeddings, labels, similarity=plugins.similarity())
        env.store.add_accuracies(scheme, "val", status, "fold", epoch, metrics)
        _show(scheme, epoch, "val", metrics)
        return metrics

    return validator


def _show(scheme: str, epoch: int, split: str, metrics: dict[str, float]) -> None:
    shown = ", ".join(f"{MAIN_METRICS[m]} {100 * metrics[m]:.2f}" for m in MAIN_METRICS if m in metrics)
    tqdm.write(f"[{scheme}] epoch {epoch:>3} {split}: {shown}")


def other_splits(
    env: FoldEnvironment, fold: FoldData, trunk: nn.Module
) -> dict[str, dict[str, TransformedSubset]]:
    """The splits of ``splits_to_eval`` other than val, each as the sets it is scored on."""
    result = {}
    for split in setting(env.settings, "splits_to_eval"):
        if split != "val":
            sets = protocol.evaluation_sets(fold, split)
            result[split] = {
                name: env.subset(fold, split if name == "self" else name, trunk) for name in sets
            }
    return result


def train_fold(
    env: FoldEnvironment, fold: FoldData, resume: bool, resume_from: str = "latest"
) -> dict[str, Any]:
    """Train ``fold`` (resuming from its ``resume_from`` checkpoint if ``resume``); returns its
    best epoch and score, number of epochs, stop reason and validation history."""
    settings, device = env.settings, env.device
    models = env.build_models(fold)
    train_set = env.subset(fold, "train", models["trunk"], train=True)
    context = env.plugin_context(fold, models)
    losses = {role: loss.to(device) for role, loss in build_losses(settings, context).items()}
    miners = build_miners(settings)
    plugins = PluginSet.from_config(settings.get("training_plugins"), context, device)
    modules: dict[str, nn.Module] = dict(models)
    modules.update({role: loss for role, loss in losses.items() if trainable_parameters(loss)})
    modules.update(plugins.modules())
    parts = build_optimization(modules, settings)
    loader_factory = make_loader_factory(settings, device, env.fold_seed(fold), train_set)
    val_set = env.subset(fold, "val", models["trunk"]) if "val" in fold.indices else None
    log = (
        TrainingLog(fold.scheme, env.experiment_dir / fold.scheme / "tensorboard", env.store)
        if distributed.is_main()
        else distributed.Discard()
    )
    trainer = Trainer(
        models,
        losses,
        miners,
        plugins,
        parts,
        loader_factory,
        make_validator(env, fold.scheme, val_set, plugins, other_splits(env, fold, models["trunk"])),
        trainer_settings(settings, device, env.fold_seed(fold)),
        env.checkpoint_dir(fold),
        on_log=log,
        progress_label=fold.scheme,
    )
    distributed.attach(trainer)  # torchrun: data-parallel over the processes
    if resume and trainer.resume(from_best=resume_from == "best"):
        print(
            f"[{fold.scheme}] resumed at epoch {trainer.state.epoch}"
            + (
                f" (already finished: {trainer.state.stop_reason})"
                if trainer.state.finished
                else f", training on to num_epochs_train = {trainer.settings.num_epochs}"
            )
        )
    try:
        state = trainer.train()
    finally:
        log.close()
    distributed.barrier()  # rank 0's best.pt is written before any rank tests
    selection = (
        f"best epoch {state.best_epoch} ({settings['eval_metric_for_best_epoch']} "
        f"{100 * state.best_score:.2f})"
        if val_set is not None
        else "no validation split: last epoch kept"
    )
    print(f"[{fold.scheme}] {state.stop_reason}; {selection}")
    return training_summary(state.__dict__)


def training_summary(state: dict[str, Any]) -> dict[str, Any]:
    """A fold's training outcome from a :class:`TrainingState` dict (a non-finite best score -> None)."""
    best_score = state["best_score"] if math.isfinite(state["best_score"]) else None
    return {
        "best_epoch": state["best_epoch"],
        "best_score": best_score,
        "epochs": state["epoch"],
        "stop_reason": state["stop_reason"],
        "history": state["history"],
    }
