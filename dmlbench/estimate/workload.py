"""How much work a command is, counted from its config and its split sizes (pure: no torch, no data).

A fold trains ``num_epochs_train x iterations_per_epoch`` steps and validates once before
training (epoch 0, the untrained model) and after every epoch ``e`` with
``e % save_interval == 0`` or ``e == num_epochs_train`` (training/trainer.py). The test embeds
the test split once per fold with the trained model and, with ``check_untrained_accuracy``, once
more with the initial model (both untrained statuses share that pass; evaluation/protocol.py), and
scores every status per fold and concatenated; its report draws retrieval examples, a k-NN of the
test split by the best fold and by the concatenation (records/retrieval_run.py). A search runs ``trials`` trainings of every fold
(validation only), one test of the best trial, and ``reproductions`` full runs (train + test), each
job a process of its own.

``num_epochs_train`` is an upper bound: early stopping (``patience``) usually ends a fold sooner.
The projection assumes the bound unless told a fraction (``epochs_fraction``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FoldSize:
    """Images of one fold's splits (``val`` 0 when the fold has no validation split)."""

    train: int
    val: int


@dataclass(frozen=True)
class RetrievalSize:
    """The test's queries and references: the same samples when compared to self (MLRC), or
    In-Shop's query and gallery sets."""

    queries: int
    references: int
    to_self: bool = True

    @property
    def images(self) -> int:
        return self.queries if self.to_self else self.queries + self.references


@dataclass(frozen=True)
class Schedule:
    num_epochs: int
    iterations_per_epoch: int
    save_interval: int
    check_untrained_accuracy: bool
    retrieval_examples: bool = True

    def validations(self, epochs: int | None = None) -> int:
        """Validation passes of one fold that trains ``epochs`` epochs (the bound by default)."""
        epochs = self.num_epochs if epochs is None else epochs
        after = sum(1 for e in range(1, epochs + 1) if e % self.save_interval == 0 or e == epochs)
        return 1 + after


@dataclass(frozen=True)
class Search:
    trials: int
    reproductions: int


@dataclass
class Workload:
    """Counts of the units whose cost the probe measures: per split, the size of every embedding
    pass and every scoring (queries, references)."""

    jobs: int = 1  # processes that each pay the start-up
    fold_trainings: int = 0
    training_steps: int = 0
    passes: dict[str, list[int]] = field(default_factory=lambda: {"val": [], "test": []})
    scorings: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: {"val": [], "test": []})
    reports: int = 1
    example_searches: list[tuple[int, int]] = field(default_factory=list)  # the reports' k-NN (float64)


def _training(folds: list[FoldSize], schedule: Schedule, epochs: int) -> Workload:
    """Every fold trained for ``epochs`` epochs and validated on its schedule."""
    work = Workload(reports=0, fold_trainings=len(folds))
    for fold in folds:
        work.training_steps += epochs * schedule.iterations_per_epoch
        if fold.val:
            validations = schedule.validations(epochs)
            work.passes["val"] += [fold.val] * validations
            work.scorings["val"] += [(fold.val, fold.val)] * validations
    return work


def _test(num_folds: int, test: RetrievalSize, schedule: Schedule) -> Workload:
    """The test of ``num_folds`` fold models: one pass per model built, every status scored per
    fold and for the concatenation of the folds."""
    passes = 1 + (1 if schedule.check_untrained_accuracy else 0)
    statuses = 3 if schedule.check_untrained_accuracy else 1
    per_status = num_folds + (1 if num_folds > 1 else 0)
    work = Workload(reports=0)
    work.passes["test"] = [test.images] * (num_folds * passes)
    work.scorings["test"] = [(test.queries, test.references)] * (statuses * per_status)
    if schedule.retrieval_examples:
        work.example_searches = [(test.queries, test.references)] * (1 + (1 if num_folds > 1 else 0))
    return work


def _add(total: Workload, part: Workload, times: int = 1) -> None:
    total.fold_trainings += part.fold_trainings * times
    total.training_steps += part.training_steps * times
    for split in total.passes:
        total.passes[split] += part.passes[split] * times
        total.scorings[split] += part.scorings[split] * times
    total.example_searches += part.example_searches * times


def count_work(
    folds: list[FoldSize],
    test: RetrievalSize,
    schedule: Schedule,
    search: Search | None = None,
    epochs_fraction: float = 1.0,
) -> Workload:
    """The whole command's work: one run, or a search (trials, the best trial's test, reproductions)."""
    epochs = max(1, math.ceil(schedule.num_epochs * epochs_fraction))
    training, testing = _training(folds, schedule, epochs), _test(len(folds), test, schedule)
    if search is None:
        work = Workload()
        _add(work, training)
        _add(work, testing)
    else:
        work = Workload(jobs=search.trials + 1 + search.reproductions, reports=2 + search.reproductions)
        _add(work, training, search.trials + search.reproductions)
        _add(work, testing, 1 + search.reproductions)
    return work
