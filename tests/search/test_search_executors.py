"""The real executor paths: submitit (its local executor standing in for Slurm, same code path:
pickled jobs, batch submission, results read from the job folders) and local_parallel child
processes. A trial run through either executor gives the same objective."""

import json
import shutil
from pathlib import Path

import pytest
from demo_commands import TINY_TRIAL

from dmlbench.cli import main
from dmlbench.errors import ConfigError
from dmlbench.search.executor_common import REPOSITORY_ROOT, JobSpec, wait_any
from dmlbench.search.executor_factory import make_executor
from dmlbench.search.executors import ProcessExecutor
from dmlbench.search.jobs import read_result
from dmlbench.search.slurm_executor import SubmititExecutor, submitit_parameters

REPO = Path(__file__).resolve().parents[2]


def tiny_search_argv(root: Path, data: Path, config_dir: Path) -> list[str]:
    return [
        "--reproduce_results",
        str(REPO / "exp_configs" / "demo"),
        "--merge_argparse_when_resuming",
        "--experiment_name",
        "slurm_search",
        "--root_experiment_folder",
        str(root),
        "--dataset_root",
        str(data),
        "--root_config_folder",
        str(config_dir),
        "--config_general",
        "[default, slurm_local]",
        *TINY_TRIAL,
        "--loss_funcs~APPLY~3",
        "{alpha~BAYESIAN~: [1, 4]}",
        "--bayes_opt_iters",
        "2",
        "--sobol_trials",
        "2",
        "--reproductions",
        "0",
        "--trial_executor",
        "slurm",
        "--max_parallel_trials",
        "2",
    ]


@pytest.fixture(scope="module")
def slurm_search(tmp_path_factory):
    """A 2-trial search whose jobs all go through submitit (cluster: local), both trials at once."""
    base = tmp_path_factory.mktemp("submitit")
    config_dir = base / "configs"
    (config_dir / "config_general").mkdir(parents=True)
    (config_dir / "config_general" / "slurm_local.yaml").write_text(
        "slurm:\n  cluster: local\n  timeout_min: 10\n  partition: ignored_by_the_local_executor\n"
    )
    assert main(tiny_search_argv(base / "logs", base / "data", config_dir)) == 0
    return base / "logs" / "slurm_search", base / "data"


@pytest.mark.multiprocess
def test_search_through_submitit_completes_every_trial_and_reports(slurm_search):
    experiment, _ = slurm_search
    report = json.loads((experiment / "meta" / "report.json").read_text())
    assert report["trial_counts"]["COMPLETED"] == 2
    for index in range(2):
        folder = experiment / "trials" / f"trial_{index:04d}"
        cluster, job_id = (folder / "meta" / "trial_submitit_job.txt").read_text().split()
        assert cluster == "local" and job_id.isdigit()
        assert read_result("trial", folder)["metric"] == "mean_average_precision_at_r"
        # submitit's own files and the job's logs are in the trial's folder
        assert (folder / "slurm" / f"{job_id}_submitted.pkl").exists()
        assert "epoch 1" in (folder / "slurm" / f"{job_id}_0_log.err").read_text()  # training progress
    assert (experiment / "trials" / "trial_0000" / "meta" / "trial_submitit_job.txt").read_text() != (
        experiment / "trials" / "trial_0001" / "meta" / "trial_submitit_job.txt"
    ).read_text()
    best = report["best_trial"]["index"]
    assert (experiment / "trials" / f"trial_{best:04d}" / "meta" / "test_submitit_job.txt").exists()


def copy_trial(source: Path, target: Path) -> Path:
    shutil.copytree(source / "configs", target / "configs")
    return target


@pytest.mark.multiprocess
def test_a_trial_gives_the_same_objective_in_a_local_parallel_child_process(slurm_search, tmp_path):
    """The same trial config run by another executor reproduces the submitit job's fold scores
    (deterministic on CPU: the seed is in the config)."""
    experiment, data = slurm_search
    original = read_result("trial", experiment / "trials" / "trial_0000")

    executor = ProcessExecutor(capacity=1)
    spec = JobSpec("trial", copy_trial(experiment / "trials" / "trial_0000", tmp_path / "child"), data)
    (handle,) = executor.submit([spec])
    assert wait_any([handle], poll_s=0.1) == [handle]
    assert handle.failure() is None
    in_child = read_result("trial", spec.job_dir)
    assert in_child["per_fold"] == pytest.approx(original["per_fold"], abs=1e-9)
    assert in_child["mean"] == pytest.approx(original["mean"], abs=1e-9)
    assert (spec.job_dir / "trial_job.log").exists()


@pytest.mark.multiprocess
def test_a_failing_child_job_reports_its_error(tmp_path):
    folder = tmp_path / "broken"
    (folder / "configs").mkdir(parents=True)  # no config files
    executor = ProcessExecutor(capacity=1)
    (handle,) = executor.submit([JobSpec("trial", folder, tmp_path)])
    wait_any([handle], poll_s=0.1)
    assert "holds no config_" in handle.failure()


def test_submitit_options_map_the_friendly_names(tmp_path):
    options = {
        "cluster": "local",
        "partition": "gpu",
        "time": 90,
        "gpus": 1,
        "max_parallel": 4,
        "retries": 2,
        "slurm_qos": "high",
    }
    cluster, parameters = submitit_parameters(options)
    assert cluster == "local"
    assert parameters == {
        "slurm_partition": "gpu",
        "timeout_min": 90,
        "gpus_per_node": 1,
        "slurm_qos": "high",
        "name": "dmlbench",
    }  # the executor's own keys are not submitit options
    executor = SubmititExecutor(options)
    assert (executor.capacity, executor.retries) == (4, 2)
    assert SubmititExecutor({"cluster": "local", "array_parallelism": 3}).capacity == 3  # old name
    with pytest.raises(ConfigError, match="slurm.retries: expected an integer >= 0"):
        SubmititExecutor({"cluster": "local", "retries": -1})
    # a friendly name and the submitit name it stands for: neither silently wins
    with pytest.raises(
        ConfigError, match=r"slurm: time and timeout_min are the same option, given twice \(10 and 20\)"
    ):
        submitit_parameters({"time": 10, "timeout_min": 20})
    with pytest.raises(ConfigError, match="slurm: processes and tasks_per_node are the same option"):
        SubmititExecutor({"cluster": "local", "processes": 2, "tasks_per_node": 4, "gpus": 2})
    with pytest.raises(ConfigError, match="slurm: max_parallel and array_parallelism are the same option"):
        SubmititExecutor({"cluster": "local", "max_parallel": 2, "array_parallelism": 4})


def test_unknown_executor_and_bad_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="did you mean local_parallel"):
        make_executor("local_paralel", {}, None)
    with pytest.raises(ConfigError, match="one trial at a time"):
        make_executor("local", {}, 4)
    with pytest.raises(ConfigError, match="bad submitit option"):
        make_executor("slurm", {"slurm": {"cluster": "local", "no_such_option": 1}}, None)


def test_local_parallel_gives_each_running_trial_its_own_gpu(tmp_path, monkeypatch):
    import dmlbench.search.executors as executors

    launched = []

    class FakeProcess:
        def __init__(self, command, env, **kwargs):
            launched.append((command, env))
            self.returncode = None

        def poll(self):
            return self.returncode

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setattr(executors.subprocess, "Popen", FakeProcess)
    executor = ProcessExecutor()
    assert executor.capacity == 2  # one trial per visible GPU by default
    first, second = executor.submit([JobSpec("trial", tmp_path / f"t{i}", tmp_path) for i in range(2)])
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in launched] == ["3", "5"]
    assert launched[0][0][1:4] == ["-m", "dmlbench.search.jobs", "trial"]
    first.process.returncode = 0  # the trial on GPU 3 ends; the next one gets GPU 3
    executor.submit([JobSpec("trial", tmp_path / "t2", tmp_path)])
    assert launched[-1][1]["CUDA_VISIBLE_DEVICES"] == "3"
    assert str(REPOSITORY_ROOT) in launched[-1][1]["PYTHONPATH"].split(":")


def test_local_parallel_on_cpu_shares_the_cores_out(tmp_path, monkeypatch):
    import dmlbench.search.executors as executors

    envs = []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(executors.os, "cpu_count", lambda: 16)
    monkeypatch.setattr(
        executors.subprocess,
        "Popen",
        lambda command, env, **kwargs: envs.append(env) or type("P", (), {"poll": lambda self: None})(),
    )
    executor = ProcessExecutor(capacity=4)
    executor.submit([JobSpec("trial", tmp_path / "t0", tmp_path)])
    assert envs[0]["OMP_NUM_THREADS"] == "4" and envs[0]["CUDA_VISIBLE_DEVICES"] == ""


def test_local_parallel_refuses_a_device_index_the_trials_cannot_see(tmp_path):
    with pytest.raises(ConfigError, match="device: cuda:1 with --trial_executor local_parallel"):
        make_executor("local_parallel", {"device": "cuda:1"}, None)
    for device in ("cuda", "cuda:0", "auto", "cpu", None):
        assert make_executor("local_parallel", {"device": device}, None).name == "local_parallel"
