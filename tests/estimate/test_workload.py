"""--estimate's counting and arithmetic, against counts worked out by hand from the trainer's and
the test protocol's rules (docs/estimate.md)."""

from __future__ import annotations

import pytest

from dmlbench.estimate.probe import UnitCosts
from dmlbench.estimate.projection import REPORT_S, duration, project
from dmlbench.estimate.workload import FoldSize, RetrievalSize, Schedule, Search, count_work

DEMO = Schedule(num_epochs=12, iterations_per_epoch=20, save_interval=2, check_untrained_accuracy=True)


@pytest.mark.parametrize(
    ("epochs", "save_interval", "expected"),
    [
        (12, 2, 7),  # epoch 0, then 2, 4, 6, 8, 10, 12
        (5, 2, 4),  # epoch 0, then 2, 4 and the last epoch 5
        (1, 1, 2),  # epoch 0 and 1
        (3, 10, 2),  # epoch 0 and the last epoch 3
    ],
)
def test_validations_per_fold(epochs, save_interval, expected):
    schedule = Schedule(epochs, 100, save_interval, check_untrained_accuracy=False)
    assert schedule.validations() == expected


def test_demo_run():
    # the demo: 4 MLRC folds of 18 train / 6 val classes x 32 images, a test set of 24 x 32
    work = count_work([FoldSize(576, 192)] * 4, RetrievalSize(768, 768), DEMO)
    assert work.jobs == 1 and work.fold_trainings == 4
    assert work.training_steps == 4 * 12 * 20
    assert work.passes["val"] == [192] * 28
    assert work.scorings["val"] == [(192, 192)] * 28
    # per fold one pass of the initial trunk (both untrained statuses) and one of the trained model
    assert work.passes["test"] == [768] * 8
    # 3 statuses x (4 folds + their concatenation)
    assert work.scorings["test"] == [(768, 768)] * 15


def test_untrained_statuses_off():
    schedule = Schedule(2, 10, 1, check_untrained_accuracy=False)
    work = count_work([FoldSize(100, 20)] * 2, RetrievalSize(50, 50), schedule)
    assert work.passes["test"] == [50, 50]
    assert work.scorings["test"] == [(50, 50)] * 3


def test_query_gallery_without_validation():
    # In-Shop: one fold (the data set's own split), no val split, 10 queries against 20 gallery images
    work = count_work([FoldSize(300, 0)], RetrievalSize(10, 20, to_self=False), DEMO)
    assert work.passes["val"] == [] and work.scorings["val"] == []
    assert work.passes["test"] == [30, 30]
    assert work.scorings["test"] == [(10, 20)] * 3  # no concatenation of a single fold


def test_search():
    schedule = Schedule(2, 10, 1, check_untrained_accuracy=True)
    folds = [FoldSize(100, 20)] * 2
    work = count_work(folds, RetrievalSize(40, 40), schedule, Search(trials=3, reproductions=2))
    assert work.jobs == 3 + 1 + 2
    assert work.fold_trainings == (3 + 2) * 2
    assert work.training_steps == (3 + 2) * 2 * 2 * 10
    assert len(work.passes["val"]) == (3 + 2) * 2 * 3
    # the best trial's test and one per reproduction, 2 folds x 2 passes each
    assert work.passes["test"] == [40] * (3 * 4)
    assert work.reports == 2 + 2


def test_epochs_fraction_rounds_up():
    work = count_work([FoldSize(10, 5)], RetrievalSize(5, 5), DEMO, epochs_fraction=0.3)
    assert work.training_steps == 4 * 20  # ceil(12 * 0.3) = 4 epochs
    assert len(work.passes["val"]) == 1 + 2  # epoch 0, 2 and the last (4)


def test_projection_is_work_times_costs():
    costs = UnitCosts(
        dataset_s=0.5,
        fold_setup_s=3.0,
        step_s=0.5,
        embed_fixed_s=1.0,
        embed_per_image_s=0.01,
        score_fixed_s=0.1,
        score_per_pair_s=1e-6,
        example_fixed_s=0.2,
        example_per_pair_s=3e-6,
    )
    work = count_work([FoldSize(100, 20)], RetrievalSize(50, 50), Schedule(1, 10, 1, False))
    projection = project(work, costs, startup_s=4.0)
    # by hand: 2 validations of 20 images, 1 test pass of 50 images, 1 status x 1 fold scored; the
    # report's retrieval examples: one k-NN of the test split (one fold: no concatenation)
    expected = {
        "start-up": 4.0 + 0.5,
        "fold set-up": 3.0,
        "training steps": 10 * 0.5,
        "validation": 2 * (1.0 + 20 * 0.01) + 2 * (0.1 + 400e-6),
        "test": (1.0 + 50 * 0.01) + (0.1 + 2500e-6),
        "report": REPORT_S + (0.2 + 2500 * 3e-6),
    }
    assert projection.phases == pytest.approx(expected)
    assert projection.total_s == pytest.approx(sum(projection.phases.values()))
    # four folds: the best fold's and the concatenation's k-NN; none when examples are off
    four = count_work([FoldSize(100, 20)] * 4, RetrievalSize(50, 50), Schedule(1, 10, 1, False))
    assert project(four, costs, 4.0).phases["report"] == pytest.approx(REPORT_S + 2 * (0.2 + 2500 * 3e-6))
    quiet = count_work(
        [FoldSize(100, 20)], RetrievalSize(50, 50), Schedule(1, 10, 1, False, retrieval_examples=False)
    )
    assert project(quiet, costs, 4.0).phases["report"] == pytest.approx(REPORT_S)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(2.46, "2.5 s"), (42, "42 s"), (450, "7.5 min"), (3 * 3600, "3.0 h"), (3 * 86400, "3.0 days")],
)
def test_duration(seconds, shown):
    assert duration(seconds) == shown
