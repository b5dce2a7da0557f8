"""The search loop and its resume rules, with a fake executor that writes results instead of
training (Sobol-only budgets, so no Bayesian-optimisation fitting is needed)."""

import json
import math

import pytest

from dmlbench.config.yaml_io import load_yaml_file
from dmlbench.errors import ExperimentError
from dmlbench.search.executors import FinishedHandle
from dmlbench.search.layout import (
    JOB_ERROR,
    REPRODUCTION_INFO,
    TEST_RESULT,
    TRIAL_PARAMETERS,
    TRIAL_RESULT,
    SearchLayout,
)
from dmlbench.search.optimizer import AxSearch
from dmlbench.search.space import SearchSpace
from dmlbench.search.trials import Search

METRIC = "mean_average_precision_at_r"
ALPHA = "loss_funcs.metric_loss.MultiSimilarityLoss.alpha"
CONFIG = {
    "config_general": {"seed": 0},
    "config_loss_and_miners": {
        "loss_funcs": {
            "metric_loss": {"MultiSimilarityLoss": {"alpha~LOG_BAYESIAN~": [0.1, 10.0], "beta": 50}}
        }
    },
}


def objective(alpha: float) -> float:
    """An independent made-up objective, highest at alpha = 2."""
    return 1.0 / (1.0 + math.log(alpha / 2.0) ** 2)


class FakeExecutor:
    """Writes each trial's result (objective of its saved value) or a failure, in-process."""

    name, capacity = "fake", 1

    def __init__(self, fail=lambda index: False):
        self.calls: list[str] = []
        self.fail = fail

    def submit(self, specs):
        handles = []
        for spec in specs:
            self.calls.append(spec.job_dir.name)
            index = int(spec.job_dir.name.split("_")[-1])
            if self.fail(index):
                (spec.job_dir / JOB_ERROR).parent.mkdir(parents=True, exist_ok=True)
                (spec.job_dir / JOB_ERROR).write_text("Traceback ...\nRuntimeError: diverged\n")
                handles.append(FinishedHandle(spec, "RuntimeError: diverged"))
                continue
            config = load_yaml_file(spec.job_dir / "configs" / "config_loss_and_miners.yaml")
            alpha = config["loss_funcs"]["metric_loss"]["MultiSimilarityLoss"]["alpha"]
            (spec.job_dir / "meta").mkdir(parents=True, exist_ok=True)
            if spec.kind == "trial":
                (spec.job_dir / TRIAL_RESULT).write_text(
                    json.dumps(
                        {
                            "metric": METRIC,
                            "mean": objective(alpha),
                            "sem": 0.01,
                            "per_fold": {"f0": objective(alpha)},
                        }
                    )
                )
            else:  # a test: a made-up score from the seed
                seed = load_yaml_file(spec.job_dir / "configs" / "config_general.yaml")["seed"]
                score = (seed % 1000) / 1000
                (spec.job_dir / TEST_RESULT).write_text(
                    json.dumps(
                        {
                            "results": {
                                "test": {
                                    "trained": {
                                        "separated": {
                                            "mean": {METRIC: score},
                                            "sem": {METRIC: 0.0},
                                            "per_fold": {},
                                        },
                                        "concatenated": {METRIC: score},
                                    }
                                }
                            }
                        }
                    )
                )
            handles.append(FinishedHandle(spec, None))
        return handles

    def reattach(self, spec):
        return None

    def close(self):
        pass


def make_search(tmp_path, executor, sobol=6, reload=False):
    layout = SearchLayout(tmp_path / "exp")
    space = SearchSpace(CONFIG)
    if reload:
        ax = AxSearch.load(layout.ax_state_path)
    else:
        ax = AxSearch.create(space, METRIC, seed=0, sobol_trials=sobol, state_path=layout.ax_state_path)
    return Search(layout, CONFIG, space, ax, executor, tmp_path / "data", METRIC)


def statuses(search):
    return {t.index: t.status for t in search.ax.trials()}


def test_trials_run_with_concrete_configs_and_the_best_matches_the_objective(tmp_path):
    executor = FakeExecutor()
    search = make_search(tmp_path, executor)
    search.run_trials(3)
    assert statuses(search) == {0: "COMPLETED", 1: "COMPLETED", 2: "COMPLETED"}
    assert executor.calls == ["trial_0000", "trial_0001", "trial_0002"]
    alphas = {}
    for index in range(3):
        folder = search.layout.trial_dir(index)
        loss = load_yaml_file(folder / "configs" / "config_loss_and_miners.yaml")["loss_funcs"]["metric_loss"]
        assert set(loss["MultiSimilarityLoss"]) == {"alpha", "beta"}  # marker replaced by its value
        alphas[index] = loss["MultiSimilarityLoss"]["alpha"]
        assert json.loads((folder / TRIAL_PARAMETERS).read_text())["values"][ALPHA] == alphas[index]
    from dmlbench.search.results import best_trial

    best = best_trial(search.rows())
    assert best.index == max(alphas, key=lambda i: (objective(alphas[i]), -i))
    assert best.parameters[ALPHA] == alphas[best.index]
    # Ax's state on disk says the same
    assert statuses(make_search(tmp_path, executor, reload=True)) == statuses(search)


def test_a_trial_finished_on_disk_before_a_kill_is_recorded_not_rerun(tmp_path):
    search = make_search(tmp_path, FakeExecutor())
    ((index, parameters),) = search.ax.propose(1).items()
    spec = search.prepare_trial(index, parameters)
    FakeExecutor().submit([spec])  # the job finished, then the search died before telling Ax
    assert statuses(make_search(tmp_path, None, reload=True)) == {0: "RUNNING"}

    executor = FakeExecutor()
    resumed = make_search(tmp_path, executor, reload=True)
    resumed.reconcile()
    assert statuses(resumed) == {0: "COMPLETED"} and executor.calls == []
    resumed.run_trials(2)
    assert executor.calls == ["trial_0001"]
    assert statuses(resumed) == {0: "COMPLETED", 1: "COMPLETED"}


def test_a_running_trial_with_matching_parameters_is_resumed_in_its_folder(tmp_path):
    search = make_search(tmp_path, FakeExecutor())
    ((index, parameters),) = search.ax.propose(1).items()
    search.prepare_trial(index, parameters)
    (search.layout.trial_dir(0) / "fold_0").mkdir()  # e.g. checkpoints from before the kill

    executor = FakeExecutor()
    resumed = make_search(tmp_path, executor, reload=True)
    resumed.reconcile()
    resumed.run_trials(1)
    assert executor.calls == ["trial_0000"]
    assert statuses(resumed) == {0: "COMPLETED"}
    assert (resumed.layout.trial_dir(0) / "fold_0").is_dir()  # same folder, not replaced


def test_a_running_trial_whose_folder_holds_other_parameters_is_abandoned_and_replaced(tmp_path):
    search = make_search(tmp_path, FakeExecutor())
    ((index, parameters),) = search.ax.propose(1).items()
    search.prepare_trial(index, parameters)
    path = search.layout.trial_dir(0) / TRIAL_PARAMETERS
    saved = json.loads(path.read_text())
    saved["ax_parameters"][ALPHA] = 9.5 if parameters[ALPHA] != 9.5 else 0.5
    path.write_text(json.dumps(saved))

    executor = FakeExecutor()
    resumed = make_search(tmp_path, executor, reload=True)
    resumed.reconcile()
    assert statuses(resumed) == {0: "ABANDONED"}
    assert (resumed.layout.stale_dir() / "trial_0000").is_dir()
    resumed.run_trials(2)  # abandoned trials do not count against the budget
    assert statuses(resumed) == {0: "ABANDONED", 1: "COMPLETED", 2: "COMPLETED"}
    assert executor.calls == ["trial_0001", "trial_0002"]


def test_a_folder_ax_does_not_know_is_moved_aside(tmp_path):
    search = make_search(tmp_path, FakeExecutor())
    search.run_trials(1)
    stray = search.layout.trial_dir(7)
    stray.mkdir(parents=True)
    resumed = make_search(tmp_path, FakeExecutor(), reload=True)
    resumed.reconcile()
    assert not stray.exists() and (resumed.layout.stale_dir() / "trial_0007").is_dir()
    assert resumed.layout.trial_dir(0).is_dir()


def test_failed_trials_count_and_three_in_a_row_stop_the_search(tmp_path):
    executor = FakeExecutor(fail=lambda index: index >= 1)
    search = make_search(tmp_path, executor)
    with pytest.raises(ExperimentError, match="3 trials in a row failed.*diverged"):
        search.run_trials(6)
    assert statuses(search) == {0: "COMPLETED", 1: "FAILED", 2: "FAILED", 3: "FAILED"}
    rows = {r.index: r for r in search.rows()}
    assert rows[1].error == "RuntimeError: diverged" and rows[1].mean is None


def test_failed_trials_use_up_the_budget(tmp_path):
    executor = FakeExecutor(fail=lambda index: index == 1)
    search = make_search(tmp_path, executor)
    search.run_trials(3)
    assert statuses(search) == {0: "COMPLETED", 1: "FAILED", 2: "COMPLETED"}


def test_raising_the_budget_later_continues_the_numbering(tmp_path):
    executor = FakeExecutor()
    make_search(tmp_path, executor).run_trials(2)
    again = make_search(tmp_path, executor, reload=True)
    again.reconcile()
    again.run_trials(4)
    assert executor.calls == ["trial_0000", "trial_0001", "trial_0002", "trial_0003"]
    assert sorted(p.name for p in again.layout.trials_dir.glob("trial_*")) == executor.calls


def test_ax_proposes_nothing_while_sobol_waits_for_data(tmp_path):
    search = make_search(tmp_path, FakeExecutor(), sobol=2)
    assert len(search.ax.propose(5)) == 2  # the Sobol budget, then Ax needs observations
    assert search.ax.propose(1) == {}


def test_reproductions_get_derived_seeds_and_raising_the_count_runs_only_the_new_ones(tmp_path):
    from dmlbench.search.results import best_trial
    from dmlbench.training.seeding import derive_seed

    executor = FakeExecutor()
    search = make_search(tmp_path, executor)
    search.run_trials(2)
    best = best_trial(search.rows())
    runs = search.reproduce(best, 2, base_seed=0)
    assert executor.calls[-2:] == ["reproduction_0000", "reproduction_0001"]
    seeds = [
        load_yaml_file(search.layout.reproduction_dir(i) / "configs" / "config_general.yaml")["seed"]
        for i in range(2)
    ]
    assert seeds == [derive_seed(0, "reproduction", 0), derive_seed(0, "reproduction", 1)]
    assert [run["test"]["trained"]["concatenated"][METRIC] for run in runs] == [
        (s % 1000) / 1000 for s in seeds
    ]
    # the reproduction is the best trial's config with another seed
    best_loss = load_yaml_file(
        search.layout.trial_dir(best.index) / "configs" / "config_loss_and_miners.yaml"
    )
    assert (
        load_yaml_file(search.layout.reproduction_dir(1) / "configs" / "config_loss_and_miners.yaml")
        == best_loss
    )

    before = len(executor.calls)
    assert len(search.reproduce(best, 3, base_seed=0)) == 3
    assert executor.calls[before:] == ["reproduction_0002"]


def test_reproductions_of_an_earlier_best_trial_are_archived(tmp_path):
    search = make_search(tmp_path, FakeExecutor())
    search.run_trials(2)
    rows = search.rows()
    search.reproduce(rows[0], 1, base_seed=0)
    search.reproduce(rows[1], 1, base_seed=0)
    archived = tmp_path / "exp" / "reproductions_of_trial_0000" / "reproduction_0000"
    assert json.loads((archived / REPRODUCTION_INFO).read_text())["best_trial"] == 0
    assert json.loads((search.layout.reproduction_dir(0) / REPRODUCTION_INFO).read_text())["best_trial"] == 1
