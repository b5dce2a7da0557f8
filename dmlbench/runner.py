"""An experiment: its folder, its resolved config and its folds; :meth:`Experiment.run` trains
every fold (:mod:`dmlbench.training.fold`), tests them (:mod:`dmlbench.evaluation.protocol`),
draws the retrieval examples (:mod:`dmlbench.records.retrieval_run`) and writes the report
(:mod:`dmlbench.records.run_report`). This module is the one orchestrator: the lower layers get
what they use -- explicit arguments, or the Experiment seen through the small protocols
:class:`~dmlbench.training.fold.FoldEnvironment` and
:class:`~dmlbench.evaluation.protocol.TestEnvironment` -- and return plain data.

Layout of an experiment folder::

    <experiment>/configs/      resolved config_*.yaml, command_line.txt, split_manifest.json
    <experiment>/<scheme>/     checkpoints/{latest,best}.pt, tensorboard/
    <experiment>/meta/         records.db, csv/, report.{md,json}, plots/
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from dmlbench.attribution.examples import explain_examples
from dmlbench.config.defaults import setting
from dmlbench.config.experiment_files import (
    check_or_save_split_manifest,
    config_dir,
    flatten_config,
    save_configs,
)
from dmlbench.data.base import RetrievalDataset, TransformedSubset
from dmlbench.data.folds import FoldData
from dmlbench.data.memory import InMemoryDataset
from dmlbench.data.split_checks import check_validation_splits
from dmlbench.data.split_manifest import split_manifest
from dmlbench.data.transforms import build_split_transforms
from dmlbench.errors import ExperimentError
from dmlbench.evaluation import protocol
from dmlbench.evaluation.ensemble import concatenate_normalized
from dmlbench.evaluation.protocol import Embedded, EvaluationSettings, TestOutcome
from dmlbench.models.factory import input_normalization
from dmlbench.records.environment import timed_phase
from dmlbench.records.retrieval_run import example_folds, write_retrieval_examples
from dmlbench.records.run_report import (
    ReportInputs,
    finish_experiment,
    report_results,
    retrieval_split,
    utc_now,
)
from dmlbench.records.store import RecordStore
from dmlbench.registry import build, parse_spec
from dmlbench.training import checkpoint, distributed
from dmlbench.training.fold import train_fold, training_summary
from dmlbench.training.seeding import derive_seed, seed_everything
from dmlbench.user_plugins import load_user_plugins


def resolve_device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Experiment:
    """One experiment folder, its resolved config and its folds."""

    config: dict[str, dict[str, Any]]
    experiment_dir: Path
    dataset_root: Path
    settings: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.experiment_dir = Path(self.experiment_dir)
        self.settings = flatten_config(self.config)
        load_user_plugins(setting(self.settings, "plugin_paths"))  # the user's own @register-ed classes
        if setting(self.settings, "num_threads"):
            torch.set_num_threads(int(setting(self.settings, "num_threads")))
        self.device = distributed.setup(resolve_device(setting(self.settings, "device")))  # torchrun: join
        self.evaluation = EvaluationSettings.from_config(self.settings)
        self.meta_dir = self.experiment_dir / "meta"
        self.config_dir = config_dir(self.experiment_dir)
        self._dataset: RetrievalDataset | None = None
        self._folds: list[FoldData] | None = None
        self._transforms: dict[str, Any] | None = None
        self._store: RecordStore | None = None

    # ------------------------------------------------------------------ data and folds
    @property
    def store(self) -> RecordStore:
        """meta/records.db; under torchrun, ranks > 0 get a stand-in that records nothing."""
        if self._store is None:
            self._store = (
                RecordStore(self.meta_dir)
                if distributed.is_main()
                else cast(RecordStore, distributed.Discard())
            )
        return self._store

    @property
    def dataset(self) -> RetrievalDataset:
        if self._dataset is None:
            name, kwargs = parse_spec(self.settings["dataset"], "dataset")
            kwargs.setdefault("root", str(self.dataset_root))
            dataset = build("dataset", {name: kwargs}, role="dataset")
            short_side = setting(self.settings, "pre_resized_cache")
            if short_side:
                from dmlbench.data.fast import pre_resized

                cache_root = Path(self.dataset_root) / "dmlbench_cache" / name
                dataset = pre_resized(dataset, int(short_side), cache_root, progress=True)
            if setting(self.settings, "images_in_memory"):
                dataset = InMemoryDataset(dataset)  # decoded by served_dataset, when first needed
            self._dataset = dataset
        return self._dataset

    @property
    def folds(self) -> list[FoldData]:
        """The split manager's schemes; the manifest is saved, and checked against the saved one."""
        if self._folds is None:
            manager = build("split_manager", self.settings["split_manager"], role="split_manager")
            dataset = self.dataset
            splits = manager.split(dataset.labels, dataset.official_split)
            check_validation_splits(splits, dataset.labels, self.settings["split_manager"])
            check_or_save_split_manifest(self.experiment_dir, split_manifest(splits, dataset.labels))
            self._folds = []
            for scheme, indices in splits.items():
                train_labels = np.unique(dataset.labels[indices["train"]])
                label_map = {int(label): position for position, label in enumerate(train_labels)}
                self._folds.append(FoldData(scheme, indices, label_map))
        return self._folds

    def transforms(self, trunk: nn.Module) -> dict[str, Any]:
        if self._transforms is None:
            self._transforms = build_split_transforms(self.settings["transforms"], input_normalization(trunk))
        return self._transforms

    def subset(self, fold: FoldData, split: str, trunk: nn.Module, train: bool = False) -> TransformedSubset:
        transform = self.transforms(trunk)["train" if train else "eval"]
        return TransformedSubset(
            self.served_dataset(), fold.indices[split], transform, fold.label_map if train else None
        )

    def served_dataset(self) -> RetrievalDataset:
        """The data set the loaders read: with ``images_in_memory`` its images are decoded here,
        once, in this process, before any loader (and its worker processes) starts."""
        if isinstance(self.dataset, InMemoryDataset):
            self.dataset.load()
        return self.dataset

    def subset_of(self, indices: np.ndarray, trunk: nn.Module) -> TransformedSubset:
        """Samples ``indices`` with the evaluation transform."""
        return TransformedSubset(self.served_dataset(), indices, self.transforms(trunk)["eval"])

    # ------------------------------------------------------------------ a fold's models
    def fold_seed(self, fold: FoldData) -> int:
        return derive_seed(int(setting(self.settings, "seed")), fold.scheme)

    def build_models(self, fold: FoldData) -> dict[str, nn.Module]:
        """The fold's models at initialisation (deterministic given the fold seed)."""
        seed_everything(self.fold_seed(fold))
        factory = build(
            "factory",
            setting(self.settings, "factories").get("model", {"ModelFactory": {}}),
            role="factories.model",
        )
        models = factory.build(self.settings["models"])
        return {name: module.to(self.device) for name, module in models.items()}

    @staticmethod
    def plugin_context(fold: FoldData, models: dict[str, nn.Module]) -> dict[str, Any]:
        """Constructor arguments filled in for losses and plugins that accept them."""
        return {
            "num_classes": len(fold.label_map),
            "embedding_size": int(getattr(models["embedder"], "num_features", 0)) or None,
        }

    def checkpoint_dir(self, fold: FoldData) -> Path:
        return self.experiment_dir / fold.scheme / "checkpoints"

    def load_best_models(self, fold: FoldData) -> tuple[dict[str, nn.Module], dict[str, Any]]:
        """The fold's best models, and the whole ``best.pt`` checkpoint (epoch, plugin states)."""
        path = self.checkpoint_dir(fold) / "best.pt"
        if not path.exists():
            raise ExperimentError(
                f"no trained model for {fold.scheme}: {path} is missing (train first, or "
                "--resume_training latest to finish training)"
            )
        saved = checkpoint.load(
            path,
            self.device,
            remedy=f"delete {path.parent} and resume with --resume_training "
            f"latest to train {fold.scheme} again",
        )
        models = self.build_models(fold)
        checkpoint.load_models(saved, models)
        return models, saved

    # ------------------------------------------------------------------ whole runs
    def train_fold(self, fold: FoldData, resume: bool, resume_from: str = "latest") -> dict[str, Any]:
        """Train ``fold`` (:func:`dmlbench.training.fold.train_fold`); -> its training outcome."""
        return train_fold(self, fold, resume, resume_from)

    def test(self, splits: list[str], statuses: list[str], ensemble: bool) -> TestOutcome:
        """Test every fold on ``splits`` (:func:`dmlbench.evaluation.protocol.test`)."""
        return protocol.test(self, splits, statuses, ensemble)

    def retrieval_examples(
        self,
        training: dict[str, Any],
        split: str,
        queries: int,
        top_k: int = 5,
        cached: dict[tuple[str, str], Embedded] | None = None,
    ) -> dict[str, Any]:
        """Draw the retrieval examples of ``split`` (:mod:`dmlbench.records.retrieval_run`) with the
        trained embeddings of a test just run (``cached``, per (split, scheme)), embedding again
        (rank 0 alone) the folds it lacks; -> what the report shows."""
        chosen = example_folds({fold.scheme: fold.indices for fold in self.folds}, training, split)
        if isinstance(chosen, str):
            return {"skipped": chosen}
        embedded: dict[str, Embedded] = {}
        for fold in self.folds:
            if fold.scheme in chosen.schemes:
                pair = (cached or {}).get((split, fold.scheme))
                if pair is None:
                    pair = protocol.trained_embeddings(
                        self, fold, chosen.indices, f"{fold.scheme} {split} examples"
                    )
                embedded[fold.scheme] = (pair[0].cpu(), pair[1].cpu())
        concatenated = (
            concatenate_normalized([embeddings for embeddings, _ in embedded.values()])
            if len(embedded) > 1
            else None
        )
        examples = write_retrieval_examples(
            chosen,
            embedded[chosen.best_fold][1],
            embedded[chosen.best_fold][0],
            concatenated,
            self.dataset.load_image,
            self.meta_dir / "plots",
            queries,
            top_k,
        )
        count = int(setting(self.settings, "eval_explanations"))
        if count > 0 and examples.get("grids"):
            best = next(fold for fold in self.folds if fold.scheme == chosen.best_fold)
            first = examples["grids"][0]["queries"][:count]
            examples["explanations"] = self.explanations(
                best, chosen.indices, embedded[best.scheme], first, top_k, chosen.gallery_start
            )
        return examples

    def explanations(
        self,
        fold: FoldData,
        indices: np.ndarray,
        embedded: Embedded,
        queries: list[int],
        top_k: int,
        gallery_start: int | None = None,
    ) -> dict[str, Any]:
        """Heatmaps of why the first example ``queries`` of ``fold`` (indices into the split's
        samples ``indices``, embedded as ``embedded``; the gallery from ``gallery_start``) find
        their ``top_k`` neighbours (:func:`dmlbench.attribution.examples.explain_examples`);
        -> what the report shows."""
        models, _, similarity = protocol.fold_models(self, fold, "trained")
        if similarity is not None:
            return {
                "skipped": "the models rank with their plugin's similarity; explain a query with "
                f"python -m dmlbench.explain --experiment_name {self.experiment_dir.name} --query N"
            }
        subset = self.subset_of(indices, models["trunk"])
        return explain_examples(
            models,
            lambda index: subset[index][0],
            input_normalization(models["trunk"]),
            embedded[0],
            [int(label) for label in embedded[1]],
            queries,
            top_k,
            self.meta_dir / "plots",
            f"{self.experiment_dir.name}, best fold ({fold.scheme})",
            gallery_start,
        )

    def report(self, outcome: TestOutcome, training: dict[str, Any], merge: bool = False) -> dict[str, Any]:
        """Write the report of a test's ``outcome`` and the folds' ``training``
        (:func:`dmlbench.records.run_report.finish_experiment`); ``merge`` keeps the earlier
        report's results that this test did not recompute. -> the report dict."""
        created = utc_now()
        results, tested_at = report_results(self.meta_dir, outcome.summary, created, merge)
        split = retrieval_split(results)
        queries = int(setting(self.settings, "eval_retrieval_examples"))
        retrieval = None
        if split is not None and queries > 0:
            with timed_phase(self.meta_dir, "retrieval examples"):
                retrieval = self.retrieval_examples(
                    training, split, queries, cached=outcome.trained_embeddings
                )
        inputs = ReportInputs(
            self.experiment_dir, self.config, created, results, tested_at, training, retrieval
        )
        return finish_experiment(inputs, self.store)

    def run(self, resume: bool = False, resume_from: str = "latest") -> dict[str, Any]:
        """Train every fold (resuming from ``resume_from`` checkpoints if ``resume``), then test."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        save_configs(self.config, self.config_dir)
        training = {}
        for index, fold in enumerate(self.folds):
            print(
                f"== fold {index + 1}/{len(self.folds)}: {fold.scheme} "
                f"(train {len(fold.label_map)} classes / {len(fold.indices['train'])} images"
                + (
                    f", val {len(np.unique(self.dataset.labels[fold.indices['val']]))} classes"
                    if "val" in fold.indices
                    else ""
                )
                + ")"
            )
            with timed_phase(self.meta_dir, f"train {fold.scheme}"):
                training[fold.scheme] = self.train_fold(fold, resume=resume, resume_from=resume_from)
        with timed_phase(self.meta_dir, "test"):
            outcome = self.test(["test"], self.evaluation.statuses(), ensemble=True)
        if not distributed.is_main():
            return outcome.summary  # torchrun: rank 0 writes the report
        return self.report(outcome, training)

    def evaluate(self, splits: list[str], ensemble: bool, allow_unfinished: bool = False) -> dict[str, Any]:
        """Test saved models without training (``--evaluate`` / ``--evaluate_ensemble``); folds whose
        training has not finished are refused unless ``allow_unfinished``. The report keeps earlier
        results of other splits / modes (merged per split, status and mode)."""
        training, unfinished = {}, []
        for fold in self.folds:
            latest = self.checkpoint_dir(fold) / "latest.pt"
            state = checkpoint.load_latest(latest)["state"] if latest.exists() else None
            if state is not None:
                training[fold.scheme] = training_summary(state)
            if state is None or not state.get("finished"):
                done = state["epoch"] if state else 0
                unfinished.append(
                    f"{fold.scheme} ({done} of {setting(self.settings, 'num_epochs_train')} epochs)"
                )
        if unfinished and not allow_unfinished:
            raise ExperimentError(
                f"training has not finished for {', '.join(unfinished)}: finish it with "
                "--resume_training latest, or add --evaluate_unfinished to test the best "
                "checkpoints so far"
            )
        with timed_phase(self.meta_dir, "evaluate"):
            outcome = self.test(splits, self.evaluation.statuses(), ensemble=ensemble)
        if not distributed.is_main():
            return outcome.summary
        return self.report(outcome, training, merge=True)
