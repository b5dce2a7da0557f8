"""The experiment lifecycle: split the data, train each fold, test every fold model and their
concatenated ensemble, record everything and write the report.

Layout of an experiment folder::

    <experiment>/configs/      resolved config_*.yaml, command_line.txt, split_manifest.json
    <experiment>/<scheme>/     checkpoints/{latest,best}.pt, tensorboard/
    <experiment>/meta/         records.db, csv/, report.{md,json}, plots/
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from dmlbench.config.files import CATEGORIES
from dmlbench.config.yaml_io import dump_yaml
from dmlbench.data.base import RetrievalDataset, TransformedSubset
from dmlbench.data.transforms import build_split_transforms
from dmlbench.errors import ExperimentError
from dmlbench.evaluation import retrieval_metrics
from dmlbench.evaluation.embeddings import compute_embeddings
from dmlbench.evaluation.ensemble import concatenate_normalized
from dmlbench.fileio import write_text_atomic
from dmlbench.models.factory import input_normalization
from dmlbench.records.plots import plot_validation_curves
from dmlbench.records.report import MAIN_METRICS, format_text_table, results_table, summarize_test_results, write_report
from dmlbench.records.store import RecordStore
from dmlbench.registry import build, parse_spec
from dmlbench.training import checkpoint
from dmlbench.training.components import (
    build_losses,
    build_miners,
    build_optimization,
    build_sampler,
    build_with_context,
    trainable_parameters,
)
from dmlbench.training.plugins import TrainingPlugin
from dmlbench.training.seeding import derive_seed, seed_everything
from dmlbench.training.trainer import Trainer, TrainerSettings

CONFIG_CATEGORIES = CATEGORIES


def flatten_config(config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge the categories into one dict (their top-level keys are disjoint)."""
    flat: dict[str, Any] = {}
    for category in CONFIG_CATEGORIES:
        flat.update(config.get(category) or {})
    return flat


def config_hash(config: dict[str, dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def resolve_device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def save_configs(config: dict[str, dict[str, Any]], config_dir: Path) -> None:
    for category in CONFIG_CATEGORIES:
        if category in config:
            write_text_atomic(config_dir / f"{category}.yaml", dump_yaml(config[category]))


@dataclass
class FoldData:
    scheme: str
    indices: dict[str, np.ndarray]
    label_map: dict[int, int]          # original label -> contiguous training label


@dataclass
class Experiment:
    """One experiment folder and its resolved config."""

    config: dict[str, dict[str, Any]]
    experiment_dir: Path
    dataset_root: Path
    settings: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.experiment_dir = Path(self.experiment_dir)
        self.settings = flatten_config(self.config)
        self.device = resolve_device(self.settings.get("device"))
        self.meta_dir = self.experiment_dir / "meta"
        self.config_dir = self.experiment_dir / "configs"
        self._dataset: RetrievalDataset | None = None
        self._folds: list[FoldData] | None = None
        self._transforms: dict[str, Any] | None = None
        self._store: RecordStore | None = None

    # ------------------------------------------------------------------ data
    @property
    def store(self) -> RecordStore:
        if self._store is None:
            self._store = RecordStore(self.meta_dir)
        return self._store

    @property
    def dataset(self) -> RetrievalDataset:
        if self._dataset is None:
            name, kwargs = parse_spec(self.settings["dataset"], "dataset")
            kwargs.setdefault("root", str(self.dataset_root))
            dataset = build("dataset", {name: kwargs}, role="dataset")
            short_side = self.settings.get("pre_resized_cache")
            if short_side:
                from dmlbench.data.fast import pre_resized

                cache_root = Path(self.dataset_root) / "dmlbench_cache" / name
                dataset = pre_resized(dataset, int(short_side), cache_root, progress=True)
            self._dataset = dataset
        return self._dataset

    @property
    def folds(self) -> list[FoldData]:
        """The split manager's schemes; the manifest is saved, and checked against the saved one."""
        if self._folds is None:
            from split_managers import split_manifest  # top-level package, found like a plugin
            from split_managers.checks import check_validation_splits

            manager = build("split_manager", self.settings["split_manager"], role="split_manager")
            dataset = self.dataset
            splits = manager.split(dataset.labels, dataset.official_split)
            check_validation_splits(splits, dataset.labels, self.settings["split_manager"])
            schemes = split_manifest(splits, dataset.labels)
            digest = hashlib.sha256(json.dumps(schemes, sort_keys=True).encode()).hexdigest()
            self._check_or_save_manifest({"sha256": digest, "schemes": schemes})
            self._folds = []
            for scheme, indices in splits.items():
                train_labels = np.unique(dataset.labels[indices["train"]])
                label_map = {int(label): position for position, label in enumerate(train_labels)}
                self._folds.append(FoldData(scheme, indices, label_map))
        return self._folds

    def _check_or_save_manifest(self, manifest: dict[str, Any]) -> None:
        path = self.config_dir / "split_manifest.json"
        if path.exists():
            saved = json.loads(path.read_text())
            if saved.get("sha256") != manifest.get("sha256"):
                raise ExperimentError(
                    f"the data split differs from the one saved in {path} (sha256 {saved.get('sha256', '?')[:12]} "
                    f"vs {manifest.get('sha256', '?')[:12]}): the data set or split manager changed; "
                    "use a new --experiment_name"
                )
        else:
            write_text_atomic(path, json.dumps(manifest, indent=1) + "\n")

    def transforms(self, trunk: nn.Module) -> dict[str, Any]:
        if self._transforms is None:
            self._transforms = build_split_transforms(self.settings["transforms"], input_normalization(trunk))
        return self._transforms

    def subset(self, fold: FoldData, split: str, trunk: nn.Module, train: bool = False) -> TransformedSubset:
        transform = self.transforms(trunk)["train" if train else "eval"]
        return TransformedSubset(self.dataset, fold.indices[split], transform, fold.label_map if train else None)

    def subset_of(self, indices: np.ndarray, trunk: nn.Module) -> TransformedSubset:
        """Samples ``indices`` with the evaluation transform."""
        return TransformedSubset(self.dataset, indices, self.transforms(trunk)["eval"])

    # ------------------------------------------------------------------ models
    def fold_seed(self, fold: FoldData) -> int:
        return derive_seed(int(self.settings.get("seed", 0)), fold.scheme)

    def build_models(self, fold: FoldData) -> dict[str, nn.Module]:
        """The fold's models at initialisation (deterministic given the fold seed)."""
        seed_everything(self.fold_seed(fold))
        factory = build("factory", self.settings.get("factories", {}).get("model", {"ModelFactory": {}}),
                        role="factories.model")
        models = factory.build(self.settings["models"])
        return {name: module.to(self.device) for name, module in models.items()}

    def build_plugins(self, context: dict[str, Any]) -> list[TrainingPlugin]:
        specs = self.settings.get("training_plugins") or {}
        plugins = []
        for name, kwargs in specs.items():
            plugins.append(build_with_context("hook", {name: kwargs}, f"training_plugins.{name}", context))
        return plugins

    def checkpoint_dir(self, fold: FoldData) -> Path:
        return self.experiment_dir / fold.scheme / "checkpoints"

    # ------------------------------------------------------------------ training
    def train_fold(self, fold: FoldData, resume: bool, resume_from: str = "latest") -> dict[str, Any]:
        settings = self.settings
        models = self.build_models(fold)
        train_set = self.subset(fold, "train", models["trunk"], train=True)
        context = {
            "num_classes": len(fold.label_map),
            "embedding_size": int(getattr(models["embedder"], "num_features", 0)) or None,
        }
        losses = {role: loss.to(self.device) for role, loss in build_losses(settings, context).items()}
        miners = build_miners(settings)
        plugins = self.build_plugins(context)
        modules: dict[str, nn.Module] = dict(models)
        modules.update({role: loss for role, loss in losses.items() if trainable_parameters(loss)})
        for plugin in plugins:
            modules.update({name: module.to(self.device) for name, module in plugin.modules().items()})
        parts = build_optimization(modules, settings)
        batch_size = int(settings["batch_size"])
        iterations = int(settings["iterations_per_epoch"])
        workers = int(settings.get("dataloader_num_workers", 0))
        build_sampler(settings["sampler"], train_set.labels, batch_size, iterations, train_set)  # fail early

        use_fast_path = self._fast_path_usable(train_set)

        def loader_factory(epoch: int) -> Any:
            # A new sampler each epoch: samplers keep state between epochs (pytorch-metric-learning's
            # MPerClassSampler shuffles its class list in place), which would make a resumed run differ.
            sampler = build_sampler(settings["sampler"], train_set.labels, batch_size, iterations, train_set)
            generator = torch.Generator().manual_seed(derive_seed(self.fold_seed(fold), "loader", epoch))
            if use_fast_path:
                from dmlbench.data.fast import GpuJpegBatchLoader

                return GpuJpegBatchLoader(
                    train_set, batch_size=batch_size, sampler=sampler, drop_last=True, device=self.device,
                    generator=generator, channels_last=bool(settings.get("channels_last", False)),
                )
            return torch.utils.data.DataLoader(
                train_set, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=workers,
                pin_memory=self.device.type == "cuda", generator=generator,
            )

        val_set = self.subset(fold, "val", models["trunk"]) if "val" in fold.indices else None
        tensorboard = self._tensorboard(fold)

        def validator(current: dict[str, nn.Module], epoch: int) -> dict[str, float]:
            if val_set is None:
                return {}  # no validation split: the trainer keeps the latest model
            similarity = next((sim for sim in (p.eval_similarity() for p in plugins) if sim is not None), None)
            embeddings, labels = self.embed(current["trunk"], current["embedder"], val_set, f"{fold.scheme} val")
            metrics = self.score(embeddings, labels, similarity=similarity)
            status = "trained" if epoch > 0 else "untrained_trunk_and_embedder"
            self.store.add_accuracies(fold.scheme, "val", status, "fold", epoch, metrics)
            shown = ", ".join(f"{MAIN_METRICS[m]} {100 * metrics[m]:.2f}" for m in MAIN_METRICS if m in metrics)
            tqdm.write(f"[{fold.scheme}] epoch {epoch:>3} val: {shown}")
            return metrics

        pending: dict[str, list[float]] = {}

        def on_log(group: str, values: dict[str, float], step: int) -> None:
            if group == "val":
                for name, value in values.items():
                    tensorboard.add_scalar(f"val/{name}", value, step)
                tensorboard.flush()
                return
            for name, value in values.items():
                pending.setdefault(name, []).append(value)
            if (step + 1) % 10 == 0:
                means = {name: float(np.mean(v)) for name, v in pending.items()}
                for name, value in means.items():
                    tensorboard.add_scalar(f"train/{name}", value, step)
                self.store.add_training_values(fold.scheme, step, means)
                pending.clear()

        trainer = Trainer(
            models, losses, miners, plugins, parts, loader_factory, validator,
            TrainerSettings(
                num_epochs=int(settings["num_epochs_train"]),
                iterations_per_epoch=iterations,
                save_interval=int(settings["save_interval"]),
                patience=int(settings["patience"]),
                device=self.device,
                seed=self.fold_seed(fold),
                metric_for_best=settings["eval_metric_for_best_epoch"],
                freeze_trunk_batchnorm=bool(settings.get("freeze_trunk_batchnorm", False)),
                mixed_precision=settings.get("mixed_precision"),
                channels_last=bool(settings.get("channels_last", False)),
                loss_weights=dict(settings.get("loss_weights") or {}),
            ),
            self.checkpoint_dir(fold),
            on_log=on_log,
            progress_label=fold.scheme,
        )
        if resume and trainer.resume(from_best=resume_from == "best"):
            print(f"[{fold.scheme}] resumed at epoch {trainer.state.epoch}"
                  + (" (already finished)" if trainer.state.finished else ""))
        try:
            state = trainer.train()
        finally:
            tensorboard.close()
        selection = (f"best epoch {state.best_epoch} ({settings['eval_metric_for_best_epoch']} "
                     f"{100 * state.best_score:.2f})" if val_set is not None else "no validation split: last epoch kept")
        print(f"[{fold.scheme}] {state.stop_reason}; {selection}")
        best_score = state.best_score if math.isfinite(state.best_score) else None
        return {"best_epoch": state.best_epoch, "best_score": best_score, "epochs": state.epoch,
                "stop_reason": state.stop_reason, "history": state.history}

    def _fast_path_usable(self, train_set: TransformedSubset) -> bool:
        """``fast_data_path: true`` on a CUDA device, and a data set of JPEG files it can serve."""
        if not self.settings.get("fast_data_path"):
            return False
        from dmlbench.data.fast import fast_loader_available

        reason = "it needs a CUDA device" if self.device.type != "cuda" else fast_loader_available(train_set)
        if reason:
            tqdm.write(f"fast_data_path: using the PIL DataLoader instead ({reason})")
        return reason is None

    def _tensorboard(self, fold: FoldData):
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.experiment_dir / fold.scheme / "tensorboard"))

    # ------------------------------------------------------------------ evaluation
    def _metric_options(self) -> dict[str, Any]:
        settings = self.settings
        options: dict[str, Any] = {"normalize": bool(settings.get("eval_normalize_embeddings", True))}
        if settings.get("eval_recall_at"):
            options["recall_at"] = tuple(int(k) for k in settings["eval_recall_at"])
        if settings.get("eval_chunk_size"):
            options["chunk_size"] = int(settings["eval_chunk_size"])
        return options

    def embed(self, trunk: nn.Module, embedder: nn.Module | None, dataset: Any, desc: str) -> tuple[Tensor, Tensor]:
        return compute_embeddings(
            trunk, embedder, dataset, batch_size=int(self.settings.get("eval_batch_size", 64)), device=self.device,
            num_workers=int(self.settings.get("dataloader_num_workers", 0)), desc=desc,
        )

    def score(self, embeddings: Tensor, labels: Tensor, similarity: Any = None, **query: Any) -> dict[str, float]:
        """MLRC metrics (and Recall@K); with ``eval_binarize`` also the same metrics of the binary
        codes 1[x > 0] ranked by Hamming distance, prefixed ``binary_``. ``query`` holds
        ``query_embeddings``/``query_labels`` for query-vs-gallery scoring."""
        options = {**self._metric_options(), **query}
        metrics = retrieval_metrics(embeddings, labels, device=self.device, similarity=similarity, **options)
        if self.settings.get("eval_binarize"):
            binary = retrieval_metrics(embeddings, labels, device=self.device, binarize=True, **options)
            metrics.update({f"binary_{name}": value for name, value in binary.items()})
        return metrics

    def load_best_models(self, fold: FoldData) -> tuple[dict[str, nn.Module], dict[str, Any]]:
        """The fold's best models, and the whole ``best.pt`` checkpoint (epoch, plugin states)."""
        path = self.checkpoint_dir(fold) / "best.pt"
        if not path.exists():
            raise ExperimentError(f"no trained model for {fold.scheme}: {path} is missing (train first, or "
                                  "--resume_training latest to finish training)")
        saved = checkpoint.load(path, self.device)
        models = self.build_models(fold)
        for name, module in models.items():
            module.load_state_dict(saved["models"][name])
        return models, saved

    @staticmethod
    def evaluation_sets(fold: FoldData, split: str) -> dict[str, np.ndarray]:
        """The sample sets a split is scored on: ``{"self": idx}`` (compared to itself), or
        ``{"query": idx, "gallery": idx}`` for a query-vs-gallery protocol (In-Shop), which
        ``test`` means when the split manager made query and gallery splits instead of a test split."""
        if split in fold.indices:
            return {"self": fold.indices[split]}
        if split == "test" and {"query", "gallery"} <= set(fold.indices):
            return {"query": fold.indices["query"], "gallery": fold.indices["gallery"]}
        raise ExperimentError(f"split {split!r} does not exist in {fold.scheme}; splits: {', '.join(fold.indices)}")

    def score_sets(self, embedded: dict[str, tuple[Tensor, Tensor]], similarity: Any = None) -> dict[str, float]:
        if "self" in embedded:
            return self.score(*embedded["self"], similarity=similarity)
        (query, query_labels), (gallery, gallery_labels) = embedded["query"], embedded["gallery"]
        return self.score(gallery, gallery_labels, query_embeddings=query, query_labels=query_labels,
                          similarity=similarity)

    def eval_similarity(self, fold: FoldData, models: dict[str, nn.Module], saved: dict[str, Any]) -> Any:
        """A plugin's test-time pairwise similarity (extension point (c)), with its trained state
        from the ``best.pt`` checkpoint ``saved``."""
        if not self.settings.get("training_plugins"):
            return None
        context = {"num_classes": len(fold.label_map),
                   "embedding_size": int(getattr(models["embedder"], "num_features", 0)) or None}
        plugins = self.build_plugins(context)
        for plugin, state in zip(plugins, saved.get("plugins", [])):
            plugin.load_state_dict(state)
            for name, module in plugin.modules().items():
                module.to(self.device).load_state_dict(saved["models"][name])
        similarities = [s for s in (plugin.eval_similarity() for plugin in plugins) if s is not None]
        if len(similarities) > 1:
            raise ExperimentError("several training plugins define a test-time similarity; keep one")
        return similarities[0] if similarities else None

    def test(self, splits: list[str], statuses: list[str], ensemble: bool) -> dict[str, Any]:
        """Test each fold model (and the concatenated ensemble) on ``splits`` for each status."""
        results: dict[str, dict[str, Any]] = {}
        for split in splits:
            results[split] = {}
            for status in statuses:
                per_fold: dict[str, dict[str, float]] = {}
                fold_sets: list[dict[str, tuple[Tensor, Tensor]]] = []
                for fold in self.folds:
                    sets = self.evaluation_sets(fold, split)
                    similarity = None
                    if status == "trained":
                        models, saved = self.load_best_models(fold)
                        epoch = int(saved["epoch"])
                        similarity = self.eval_similarity(fold, models, saved)
                    else:
                        models, epoch = self.build_models(fold), 0
                    embedder = None if status == "untrained_trunk" else models["embedder"]
                    embedded = {
                        role: self.embed(models["trunk"], embedder, self.subset_of(indices, models["trunk"]),
                                         f"{fold.scheme} {split}{'' if role == 'self' else ' ' + role} {status}")
                        for role, indices in sets.items()
                    }
                    per_fold[fold.scheme] = self.score_sets(embedded, similarity)
                    self.store.add_accuracies(fold.scheme, split, status, "fold", epoch, per_fold[fold.scheme])
                    fold_sets.append(embedded)
                entry: dict[str, Any] = {"folds": per_fold}
                if ensemble and len(fold_sets) > 1:
                    concatenated = {
                        role: (concatenate_normalized([sets[role][0] for sets in fold_sets]), fold_sets[0][role][1])
                        for role in fold_sets[0]
                    }
                    entry["concatenated"] = self.score_sets(concatenated)
                    self.store.add_accuracies("ensemble", split, status, "concatenated", -1, entry["concatenated"])
                results[split][status] = entry
        summary = summarize_test_results(results)
        for split, by_status in summary.items():
            for status, entry in by_status.items():
                self.store.add_accuracies("ensemble", split, status, "separated", -1, entry["separated"]["mean"])
                self.store.add_accuracies("ensemble", split, status, "separated_sem", -1, entry["separated"]["sem"])
        return summary

    # ------------------------------------------------------------------ whole runs
    def statuses(self) -> list[str]:
        untrained = ["untrained_trunk", "untrained_trunk_and_embedder"]
        return (untrained if self.settings.get("check_untrained_accuracy", True) else []) + ["trained"]

    def run(self, resume: bool = False, resume_from: str = "latest") -> dict[str, Any]:
        """Train every fold (resuming from ``resume_from`` checkpoints if ``resume``), then test."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        save_configs(self.config, self.config_dir)
        training = {}
        for index, fold in enumerate(self.folds):
            print(f"== fold {index + 1}/{len(self.folds)}: {fold.scheme} "
                  f"(train {len(fold.label_map)} classes / {len(fold.indices['train'])} images"
                  + (f", val {len(np.unique(self.dataset.labels[fold.indices['val']]))} classes"
                     if "val" in fold.indices else "") + ")")
            training[fold.scheme] = self.train_fold(fold, resume=resume, resume_from=resume_from)
        summary = self.test(["test"], self.statuses(), ensemble=True)
        return self.finish(summary, training)

    def evaluate(self, splits: list[str], ensemble: bool) -> dict[str, Any]:
        """Test saved models without training (``--evaluate`` / ``--evaluate_ensemble``)."""
        summary = self.test(splits, self.statuses(), ensemble=ensemble)
        training = {}
        for fold in self.folds:
            latest = self.checkpoint_dir(fold) / "latest.pt"
            if latest.exists():
                state = checkpoint.load(latest)["state"]
                training[fold.scheme] = {key: state[key] for key in ("best_epoch", "best_score", "stop_reason", "history")}
                if not math.isfinite(training[fold.scheme]["best_score"]):
                    training[fold.scheme]["best_score"] = None
                training[fold.scheme]["epochs"] = state["epoch"]
        return self.finish(summary, training)

    def finish(self, summary: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
        """Write CSV, plots and the report; print the results table."""
        self.store.export_csv()
        plots = []
        histories = {scheme: info["history"] for scheme, info in training.items() if info.get("history")}
        if histories:
            metric = self.settings["eval_metric_for_best_epoch"]
            plot_validation_curves(histories, metric, self.meta_dir / "plots" / "validation_curves.png")
            plots.append("validation_curves.png")
        manifest_path = self.config_dir / "split_manifest.json"
        report = {
            "experiment": self.experiment_dir.name,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "dataset": parse_spec(self.settings["dataset"], "dataset")[0],
            "split_manager": parse_spec(self.settings["split_manager"], "split_manager")[0],
            "config_sha256": config_hash(self.config),
            "split_manifest_sha256": json.loads(manifest_path.read_text()).get("sha256") if manifest_path.exists() else None,
            "results": summary,
            "training": {scheme: {k: v for k, v in info.items() if k != "history"} for scheme, info in training.items()},
            "plots": plots,
        }
        write_report(self.meta_dir, report)
        print()
        print(format_text_table(results_table(summary)))
        print(f"\nreport: {self.meta_dir / 'report.md'}  (json: report.json, records: records.db, csv/)")
        return report
