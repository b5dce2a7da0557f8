"""End to end: a 4-iteration search (2 Sobol + 2 Bayesian) with 2 reproductions on the demo
data, SIGKILLed in the middle of its second trial, then resumed by rerunning the same command."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from demo_commands import TINY_TRIAL

from dmlbench.cli import main
from dmlbench.config.yaml_io import load_yaml_file

pytestmark = pytest.mark.multiprocess  # deselected by default; .ci/run runs it

REPO = Path(__file__).resolve().parents[2]
ALPHA = "loss_funcs.metric_loss.MultiSimilarityLoss.alpha"


def search_argv(root: Path, data: Path, reproductions: int) -> list[str]:
    """The demo shrunk to seconds: 16 classes x 8 images, 2 folds, 1 epoch of 2 iterations."""
    return [
        "--reproduce_results",
        str(REPO / "exp_configs" / "demo"),
        "--merge_argparse_when_resuming",
        "--experiment_name",
        "search",
        "--root_experiment_folder",
        str(root),
        "--dataset_root",
        str(data),
        *TINY_TRIAL,
        "--loss_funcs~APPLY~3",
        "{alpha~LOG_BAYESIAN~: [0.5, 10]}",
        "--bayes_opt_iters",
        "4",
        "--sobol_trials",
        "2",
        "--reproductions",
        str(reproductions),
    ]


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the search exited ({process.returncode}) before {path} appeared")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


def read_json(path: Path):
    return json.loads(path.read_text())


def test_killed_search_resumes_without_losing_or_repeating_trials(tmp_path, capsys):
    root, data = tmp_path / "logs", tmp_path / "data"
    experiment = root / "search"
    trials = experiment / "trials"
    argv = search_argv(root, data, reproductions=2)

    env = dict(os.environ, TQDM_DISABLE="1", PYTHONPATH=str(REPO))
    log = open(tmp_path / "first_run.log", "w")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "run.py"), *argv],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    # kill while the second trial runs: trial 0 has its result, trial 1 its folder
    wait_for(trials / "trial_0000" / "meta" / "trial_result.json", process)
    wait_for(trials / "trial_0001" / "configs" / "trial_parameters.json", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    log.close()
    assert process.returncode == -signal.SIGKILL
    first_result = (trials / "trial_0000" / "meta" / "trial_result.json").read_text()
    trial_1_parameters = read_json(trials / "trial_0001" / "configs" / "trial_parameters.json")
    assert not (experiment / "meta" / "report.json").exists()
    stale = [
        trials / ".ax_state.json.4194399.deadbeef.tmp",  # pid above Linux's largest: a dead writer
        trials / "trial_0001" / "configs" / ".config_general.yaml.4194399.deadbeef.tmp",
    ]
    for path in stale:
        path.write_text("half written")
        os.utime(path, (time.time() - 3600, time.time() - 3600))

    assert main(argv) == 0  # the same command again
    assert not any(path.exists() for path in stale)  # the driver's and the resumed job's leftovers

    # no trial lost or duplicated, the killed one resumed with the parameters it had
    folders = sorted(p.name for p in trials.iterdir() if p.is_dir())
    assert folders == ["trial_0000", "trial_0001", "trial_0002", "trial_0003"]
    assert (trials / "trial_0000" / "meta" / "trial_result.json").read_text() == first_result  # not rerun
    assert read_json(trials / "trial_0001" / "configs" / "trial_parameters.json") == trial_1_parameters
    with open(experiment / "meta" / "csv" / "trials.csv") as file:
        table = list(csv.DictReader(file))
    assert [row["trial"] for row in table] == ["0", "1", "2", "3"]
    assert [row["status"] for row in table] == ["COMPLETED"] * 4
    assert [row["generation_node"] for row in table] == ["Sobol", "Sobol", "MBM", "MBM"]
    for row in table:  # the table agrees with each trial's own folder
        folder = experiment / row["folder"]
        result = read_json(folder / "meta" / "trial_result.json")
        assert float(row["objective_mean"]) == result["mean"]
        per_fold = list(result["per_fold"].values())
        assert result["mean"] == pytest.approx(sum(per_fold) / len(per_fold))
        loss = load_yaml_file(folder / "configs" / "config_loss_and_miners.yaml")["loss_funcs"]["metric_loss"]
        assert loss["MultiSimilarityLoss"]["alpha"] == float(row[ALPHA])
        assert 0.5 <= float(row[ALPHA]) <= 10

    # best parameters consistent with the trials table (highest mean, ties to the lowest index)
    best_row = min(table, key=lambda r: (-float(r["objective_mean"]), int(r["trial"])))
    best = load_yaml_file(experiment / "meta" / "best_parameters.yaml")
    assert best["trial"] == int(best_row["trial"])
    assert best["parameters"][ALPHA] == float(best_row[ALPHA])
    assert best["mean"] == float(best_row["objective_mean"])

    # report with confidence intervals over the 2 reproductions
    report = read_json(experiment / "meta" / "report.json")
    assert report["trial_counts"] == {"COMPLETED": 4, "FAILED": 0, "ABANDONED": 0, "RUNNING": 0}
    assert report["best_trial"]["index"] == best["trial"]
    assert set(report["best_trial_test"]["test"]["trained"]) >= {"separated", "concatenated"}
    assert report["reproductions"]["count"] == 2
    for mode in ("separated", "concatenated"):
        stat = report["reproductions"]["results"]["test"]["trained"][mode]["mean_average_precision_at_r"]
        assert stat["n"] == 2 and stat["ci_low"] <= stat["mean"] <= stat["ci_high"]
    runs = [
        read_json(experiment / "reproductions" / f"reproduction_{i:04d}" / "meta" / "test_result.json")
        for i in range(2)
    ]
    separated = [
        run["results"]["test"]["trained"]["separated"]["mean"]["mean_average_precision_at_r"] for run in runs
    ]
    stat = report["reproductions"]["results"]["test"]["trained"]["separated"]["mean_average_precision_at_r"]
    assert stat["mean"] == pytest.approx(sum(separated) / 2)
    seeds = [
        load_yaml_file(
            experiment / "reproductions" / f"reproduction_{i:04d}" / "configs" / "config_general.yaml"
        )["seed"]
        for i in range(2)
    ]
    assert len(set(seeds)) == 2
    assert (experiment / "meta" / "plots" / "search_trace.png").stat().st_size > 0
    assert "Reproductions of the best trial" in (experiment / "meta" / "report.md").read_text()
