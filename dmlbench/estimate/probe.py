"""Measure what one unit of work costs on this device, with the command's own config and data.

The probe builds the experiment as the run would (models, losses, plugins, sampler, loaders,
transforms), in a scratch folder under the system's temporary directory that is removed
afterwards, and measures:

- ``step_s``: one training iteration at the config's batch and image size (the mean of
  ``MEASURED_STEPS`` iterations after ``WARMUP_STEPS``, read from the training log's timestamps,
  so validation and checkpoints are not counted);
- ``fold_setup_s``: what a fold costs besides its steps and validations (models, loader
  workers, the first batches, checkpoints);
- an embedding pass of ``n`` images costs ``embed_fixed_s + n * embed_per_image_s`` (two passes
  over images of the evaluated split, ``EMBED_BATCHES`` = 2 and 6 evaluation batches: long enough
  for the loader workers to run ahead of the model, as they do in a long pass);
- the report's retrieval-example k-NN (float64, k = ``EXAMPLE_K``) the same way, ``example_*``;
- scoring ``q`` queries against ``r`` references costs ``score_fixed_s + q * r * score_per_pair_s``
  (exact k-NN is a q x r similarity; two sizes of random unit embeddings, ``SCORE_SIZES``, large
  enough that the per-block overheads are amortised as in a full-size scoring).
"""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from dmlbench.data.folds import FoldData
from dmlbench.estimate.workload import FoldSize, RetrievalSize
from dmlbench.evaluation import protocol
from dmlbench.records.retrieval_examples import nearest_neighbours
from dmlbench.records.store import RecordStore
from dmlbench.records.training_log import TRAIN_LOG_EVERY
from dmlbench.runner import Experiment
from dmlbench.training.fold import train_fold

WARMUP_STEPS = TRAIN_LOG_EVERY
MEASURED_STEPS = TRAIN_LOG_EVERY
SCORE_SIZES = (4096, 8192)
EXAMPLE_K = 100  # the retrieval examples' k: 4 x the largest class's R, about 100 or fewer
EMBED_BATCHES = (2, 6)


@dataclass(frozen=True)
class UnitCosts:
    """Seconds per unit of work on the probed device (``dataset_s``: reading the data set's index
    and making the split, once per process)."""

    dataset_s: float
    fold_setup_s: float
    step_s: float
    embed_fixed_s: float
    embed_per_image_s: float
    score_fixed_s: float
    score_per_pair_s: float
    example_fixed_s: float = 0.0  # the report's retrieval-example k-NN (float64, small k)
    example_per_pair_s: float = 0.0

    def embedding(self, images: int) -> float:
        return self.embed_fixed_s + images * self.embed_per_image_s if images else 0.0

    def scoring(self, queries: int, references: int) -> float:
        return self.score_fixed_s + queries * references * self.score_per_pair_s

    def example_search(self, queries: int, references: int) -> float:
        return self.example_fixed_s + queries * references * self.example_per_pair_s


@dataclass(frozen=True)
class Sizes:
    """The split sizes the projection multiplies: per fold, and the test's (queries, references)."""

    folds: list[FoldSize]
    test: RetrievalSize


class TimedStore:
    """The record store, with the time of each training-log write."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.steps: dict[int, float] = {}

    def add_training_values(self, scheme: str, step: int, values: dict[str, float]) -> None:
        self.steps[int(step)] = time.perf_counter()
        self.store.add_training_values(scheme, step, values)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def split_sizes(folds: list[FoldData]) -> Sizes:
    test = protocol.evaluation_sets(folds[0], "test")
    if "self" in test:
        size = RetrievalSize(len(test["self"]), len(test["self"]))
    else:
        size = RetrievalSize(len(test["query"]), len(test["gallery"]), to_self=False)
    return Sizes([FoldSize(len(f.indices["train"]), len(f.indices.get("val", ()))) for f in folds], size)


def whole_classes(indices: np.ndarray, labels: np.ndarray, at_least: int) -> np.ndarray:
    """The samples of the first classes of ``indices`` (in label order) that hold ``at_least`` images."""
    chosen, count = [], 0
    for label in np.unique(labels[indices]):
        members = indices[labels[indices] == label]
        chosen.append(members)
        count += len(members)
        if count >= at_least:
            break
    return np.concatenate(chosen)


def probe_config(config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The config with one short epoch, validated at its end."""
    probe = copy.deepcopy(config)
    general = probe.setdefault("config_general", {})
    general.update(
        num_epochs_train=1,
        iterations_per_epoch=WARMUP_STEPS + MEASURED_STEPS,
        save_interval=1,
        patience=1,
    )
    return probe


def _fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed, slope) of the line through two (size, seconds) points; never negative."""
    (x1, y1), (x2, y2) = points
    slope = max((y2 - y1) / (x2 - x1), 0.0) if x2 != x1 else y2 / max(x2, 1)
    return max(y1 - slope * x1, 0.0), slope


def _timed(function: Any) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure(experiment: Experiment, fold: FoldData, dataset_s: float, evaluated: np.ndarray) -> UnitCosts:
    """Train ``fold`` (whose val split is a small sample) for one short epoch, then time
    embedding passes over images of ``evaluated`` and scorings; see the module docstring."""
    timed = TimedStore(experiment.store)
    experiment._store = cast(RecordStore, timed)  # a proxy: the fold's log writes through it
    fold_time = _timed(lambda: train_fold(experiment, fold, resume=False))
    first, last = WARMUP_STEPS - 1, WARMUP_STEPS + MEASURED_STEPS - 1
    step_s = (timed.steps[last] - timed.steps[first]) / MEASURED_STEPS

    models = experiment.build_models(fold)
    sample = fold.indices["val"]
    settings, device = experiment.evaluation, experiment.device
    embed_points = []
    large = min(len(evaluated), EMBED_BATCHES[1] * settings.batch_size)
    for size in (max(1, large * EMBED_BATCHES[0] // EMBED_BATCHES[1]), large):
        indices = evaluated[:size]
        subset = experiment.subset_of(indices, models["trunk"])
        seconds = _timed(
            lambda s=subset: protocol.embed(settings, device, models["trunk"], models["embedder"], s, "probe")
        )
        embed_points.append((len(indices), seconds))
    embed_fixed, embed_per_image = _fit(embed_points)

    generator = torch.Generator().manual_seed(0)
    score_points, example_points = [], []
    for size in SCORE_SIZES:  # the config's scoring and the report's k-NN, on the same embeddings
        embeddings = torch.nn.functional.normalize(torch.randn(size, 128, generator=generator), dim=1)
        labels = torch.arange(size) // 8
        seconds = _timed(lambda e=embeddings, y=labels: protocol.score(settings, device, e, y))
        score_points.append((size * size, seconds))
        example_points.append((size * size, _timed(lambda e=embeddings: nearest_neighbours(e, EXAMPLE_K))))
    score_fixed, score_per_pair = _fit(score_points)
    example_fixed, example_per_pair = _fit(example_points)

    validations = 2 * (embed_fixed + len(sample) * embed_per_image) + 2 * (
        score_fixed + len(sample) ** 2 * score_per_pair
    )
    costs = UnitCosts(
        dataset_s=dataset_s,
        fold_setup_s=max(fold_time - (WARMUP_STEPS + MEASURED_STEPS) * step_s - validations, 0.0),
        step_s=step_s,
        embed_fixed_s=embed_fixed,
        embed_per_image_s=embed_per_image,
        score_fixed_s=score_fixed,
        score_per_pair_s=score_per_pair,
        example_fixed_s=example_fixed,
        example_per_pair_s=example_per_pair,
    )
    return costs


def probe(
    config: dict[str, dict[str, Any]], dataset_root: Path, sample: int = 128
) -> tuple[UnitCosts, Sizes]:
    """Unit costs of ``config`` on this device, and its split sizes; writes only to a temporary
    folder that is removed."""
    with tempfile.TemporaryDirectory(prefix="dmlbench_estimate_") as scratch:
        experiment = Experiment(probe_config(config), Path(scratch) / "probe", dataset_root)
        start = time.perf_counter()
        folds = experiment.folds
        dataset_s = time.perf_counter() - start
        sizes = split_sizes(folds)
        fold = folds[0]
        indices = dict(fold.indices)
        source = indices.get("val", indices.get("test", indices.get("gallery")))
        indices["val"] = whole_classes(np.asarray(source), experiment.dataset.labels, sample)
        costs = measure(
            experiment, FoldData(fold.scheme, indices, fold.label_map), dataset_s, np.asarray(source)
        )
    return costs, sizes
