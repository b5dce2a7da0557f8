"""A trial over two processes through the slurm executor (``slurm: {processes: 2}``; submitit's
local executor standing in for Slurm: two tasks of one job, as ``srun`` starts them): the tasks
form one process group (gloo on CPU), the folds train data-parallel, and the objective equals the
same trial run in one process. Rank 0 alone writes the result; each task has its own log."""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path

import cloudpickle
import pytest
import submitit

from dmlbench.cli import main
from dmlbench.config.experiment_files import config_dir, load_saved_configs, save_configs
from dmlbench.errors import ConfigError
from dmlbench.search.executor_common import JobSpec, wait_any
from dmlbench.search.jobs import read_result, run_job
from dmlbench.search.layout import JOB_ERROR
from dmlbench.search.slurm_executor import SubmititExecutor, SubmititHandle, submitit_parameters

pytestmark = pytest.mark.multiprocess  # deselected by default; .ci/run runs it

REPO = Path(__file__).resolve().parents[2]
# Deterministic transforms and frozen trunk BatchNorm: two processes then see exactly the batches
# one process sees (random crops are drawn per process; BatchNorm in train mode uses slice statistics).
TINY = [
    "--reproduce_results",
    str(REPO / "exp_configs" / "demo"),
    "--merge_argparse_when_resuming",
    "--dataset",
    "{DemoShapes: {num_classes: 16, images_per_class: 8}}",
    "--split_manager",
    "{MLRCSplitManager: {num_training_sets: 2, num_training_partitions: 2}}",
    "--transforms~OVERRIDE~",
    "{train: {Resize: {size: 32}}, eval: {Resize: {size: 32}}}",
    "--freeze_trunk_batchnorm",
    "true",
    "--check_untrained_accuracy",
    "false",
    "--num_epochs_train",
    "2",
    "--iterations_per_epoch",
    "4",
    "--save_interval",
    "1",
    "--batch_size",
    "16",
]


@pytest.fixture(scope="module")
def trial_folders(tmp_path_factory):
    """One saved experiment turned into two identical trial folders (the search's job layout)."""
    base = tmp_path_factory.mktemp("multiprocess")
    data, logs = base / "data", base / "logs"
    assert (
        main(
            [
                *TINY,
                "--experiment_name",
                "source",
                "--root_experiment_folder",
                str(logs),
                "--dataset_root",
                str(data),
            ]
        )
        == 0
    )
    config = load_saved_configs(logs / "source")
    folders = []
    for name in ("one_process", "two_processes"):
        folder = base / name
        config_dir(folder).mkdir(parents=True)
        save_configs(copy.deepcopy(config), config_dir(folder))
        folders.append(folder)
    return folders, data


def run_submitit(spec: JobSpec, options: dict) -> None:
    executor = SubmititExecutor({"cluster": "local", "timeout_min": 10, **options})
    (handle,) = executor.submit([spec])
    assert wait_any([handle], poll_s=0.2) == [handle]
    assert handle.failure() is None, handle.failure()


def test_two_process_trial_matches_one_process(trial_folders):
    (single, pair), data = trial_folders
    reference = run_job("trial", single, data)
    run_submitit(JobSpec("trial", pair, data), {"processes": 2})

    result = read_result("trial", pair)
    assert result["per_fold"].keys() == reference["per_fold"].keys()
    for scheme, score in reference["per_fold"].items():
        assert result["per_fold"][scheme] == pytest.approx(score, abs=1e-4), scheme
    assert result["mean"] == pytest.approx(reference["mean"], abs=1e-4)
    job_id = (pair / "meta" / "trial_submitit_job.txt").read_text().split()[1]
    logs = {task: (pair / "slurm" / f"{job_id}_{task}_log.err") for task in (0, 1)}
    assert all(log.exists() for log in logs.values())  # one log per process
    assert "epoch 2" in logs[0].read_text()  # rank 0 shows progress, rank 1 stays quiet
    assert "epoch 2" not in logs[1].read_text()
    assert not (pair / JOB_ERROR).exists()
    assert not list(pair.rglob("*.tmp"))
    # the search reads the result file rank 0 wrote; a rerun of the finished job just reads it back
    assert json.loads((pair / "meta" / "trial_result.json").read_text())["mean"] == result["mean"]


def test_batch_not_divisible_by_the_processes_fails_with_the_reason(trial_folders, tmp_path):
    (single, _), data = trial_folders
    config = load_saved_configs(single)
    assert config["config_general"]["batch_size"] == 16
    folder = tmp_path / "odd"
    config_dir(folder).mkdir(parents=True)
    save_configs(config, config_dir(folder))
    executor = SubmititExecutor({"cluster": "local", "timeout_min": 10, "processes": 3})
    (handle,) = executor.submit([JobSpec("trial", folder, data)])
    wait_any([handle], poll_s=0.2)
    assert "batch_size 16 is not divisible by the 3 processes" in handle.failure()
    assert "batch_size 16 is not divisible" in (folder / JOB_ERROR).read_text()  # rank 0 recorded it


@pytest.mark.parametrize(
    "options, message",
    [
        ({"processes": 0}, "slurm.processes: expected an integer >= 1, got 0"),
        ({"processes": "two"}, "slurm.processes: expected an integer >= 1, got 'two'"),
        ({"processes": 4, "gpus": 2}, "4 processes per node but gpus: 2; every process needs its own GPU"),
    ],
)
def test_bad_process_options_are_config_errors(tmp_path, options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        SubmititExecutor({"cluster": "local", **options})


def test_processes_become_submitit_tasks_per_node():
    assert submitit_parameters({"processes": 4, "gpus": 4})[1]["tasks_per_node"] == 4


class FailingProcess:
    """The search's job (``SearchJob``), except that the process of rank ``rank`` raises (``how =
    "raise"``) or is SIGKILLed (``"kill"``) when it starts training a fold; the others are then
    waiting for it in a collective call."""

    def __init__(self, folder: Path, data: Path, rank: int, how: str) -> None:
        self.folder, self.data, self.rank, self.how = str(folder), str(data), rank, how

    def __call__(self):
        from dmlbench import runner
        from dmlbench.search.jobs import SearchJob, export_task_environment

        export_task_environment()
        if int(os.environ["RANK"]) == self.rank:

            def broken(*args, **kwargs):
                if self.how == "kill":
                    os.kill(os.getpid(), 9)
                raise ValueError(f"process {self.rank} broke")

            runner.Experiment.train_fold = broken
        return SearchJob("trial", self.folder, self.data)()


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the job process cannot import this file


def run_failing(trial_folders, tmp_path, rank: int, how: str) -> tuple[Path, SubmititHandle]:
    (single, _), data = trial_folders
    folder = tmp_path / "trial"
    config_dir(folder).mkdir(parents=True)
    save_configs(load_saved_configs(single), config_dir(folder))
    executor = SubmititExecutor({"cluster": "local", "timeout_min": 10, "processes": 2})
    submitter = submitit.AutoExecutor(folder=str(folder / "slurm"), cluster="local")
    submitter.update_parameters(**executor.parameters)
    handle = SubmititHandle(
        JobSpec("trial", folder, data), submitter.submit(FailingProcess(folder, data, rank, how)), executor
    )
    assert wait_any([handle], poll_s=0.2) == [handle]
    return folder, handle


def test_the_error_of_a_process_other_than_rank_0_is_the_one_reported(trial_folders, tmp_path):
    """Rank 1 raises; rank 0 then fails in its collective call ("Connection closed by peer"), which is
    not the cause: the search reports rank 1's error."""
    folder, handle = run_failing(trial_folders, tmp_path, rank=1, how="raise")
    assert handle.failure() == "ValueError: process 1 broke"
    error = (folder / JOB_ERROR).read_text()
    assert error.startswith("process 1 of 2 failed:\nTraceback")
    assert "Connection closed" not in error
    assert not list(folder.rglob(".*.tmp"))


def test_a_killed_process_leaves_no_python_error(trial_folders, tmp_path):
    """Rank 1 is killed from outside (as by the out-of-memory killer): rank 0's failed collective call
    is not recorded as the trial's error, so on Slurm the job counts as killed and is resubmitted
    (``retries``) like a one-process job, instead of failing the trial with a gloo message."""
    folder, handle = run_failing(trial_folders, tmp_path, rank=1, how="kill")
    assert not (folder / JOB_ERROR).exists()
    assert f"{handle.job.job_id}_0_log.err" in handle.failure()  # rank 0's pickled error: see its log
    assert read_result("trial", folder) is None


def test_rank_0_error_wins_over_the_errors_it_causes(trial_folders, tmp_path):
    folder, handle = run_failing(trial_folders, tmp_path, rank=0, how="raise")
    assert handle.failure() == "ValueError: process 0 broke"
    assert (folder / JOB_ERROR).read_text().startswith("process 0 of 2 failed:\n")


def test_a_job_of_several_tasks_ends_when_one_fails():
    """srun's default waits for the other tasks, which wait for the failed one in a collective call
    (tests/slurm shows the job ending at once with the option)."""
    from dmlbench.search.slurm_executor import kill_step_on_bad_exit

    assert kill_step_on_bad_exit({"tasks_per_node": 2})["slurm_srun_args"] == ["--kill-on-bad-exit=1"]
    assert kill_step_on_bad_exit({"tasks_per_node": 1, "nodes": 2})["slurm_srun_args"] == [
        "--kill-on-bad-exit=1"
    ]
    assert "slurm_srun_args" not in kill_step_on_bad_exit({"tasks_per_node": 1})
    assert kill_step_on_bad_exit({"tasks_per_node": 2, "slurm_srun_args": ["--cpu-bind=none"]})[
        "slurm_srun_args"
    ] == ["--cpu-bind=none", "--kill-on-bad-exit=1"]
    assert kill_step_on_bad_exit({"tasks_per_node": 2, "slurm_srun_args": ["--kill-on-bad-exit=0"]})[
        "slurm_srun_args"
    ] == ["--kill-on-bad-exit=0"]  # the user's choice stands


class ReportGpus:
    """Stands in for the search's job: returns the GPUs it was given, once all jobs run at once."""

    def __init__(self, kind, job_dir, dataset_root):
        self.job_dir = Path(job_dir)

    def __call__(self):
        import time

        (self.job_dir / "started").touch()
        deadline = time.time() + 60
        while len(list(self.job_dir.parent.glob("*/started"))) < 3 and time.time() < deadline:
            time.sleep(0.1)
        return os.environ["CUDA_VISIBLE_DEVICES"]


class Running:
    def done(self) -> bool:
        return False


def test_concurrent_local_cluster_jobs_get_their_own_gpus(tmp_path, monkeypatch):
    """``cluster: local`` with ``gpus: 1`` and 4 GPUs: three jobs at once run on GPUs 0, 1 and 2
    (submitit's local executor alone puts all of them on GPU 0); with ``gpus: 2``, on 0,1 and 2,3."""
    import dmlbench.search.slurm_executor as slurm_executor

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.setattr(slurm_executor, "SearchJob", ReportGpus)
    executor = SubmititExecutor({"cluster": "local", "gpus": 1, "timeout_min": 2})
    jobs = [executor.submit_one(JobSpec("trial", tmp_path / "jobs" / str(k), tmp_path)) for k in range(3)]
    assert [job.result() for job in jobs] == ["0", "1", "2"]
    assert executor.local_gpus() == [0]  # all ended: the first again

    executor = SubmititExecutor({"cluster": "local", "gpus": 2, "timeout_min": 2})
    executor._local_jobs = [(Running(), [0, 1])]
    assert executor.local_gpus() == [2, 3]
    assert SubmititExecutor({"cluster": "local"}).local_gpus() is None  # no GPUs asked
