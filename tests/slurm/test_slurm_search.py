"""A search on a real Slurm cluster (``--trial_executor slurm``), skipped unless ``sinfo`` shows
an idle node: bring one up with ``bash tests/slurm/start_cluster.sh`` (tests/slurm/README.md).

One run of the demo search, shrunk to seconds (4 trials, 2 at once, 1 epoch of 2 iterations):

- trial 1's Slurm job is cancelled with ``scancel``: the trial is reported FAILED as cancelled;
- trial 0's job process is SIGKILLed: Slurm ends the job FAILED, the executor resubmits it and
  the trial completes;
- the search driver is SIGKILLed while trial 2 runs (its job suspended with ``scontrol suspend``
  until the rerun has found it, so that the order of events is fixed), and the same command is run
  again: trial 2's job is reattached (not submitted twice), the search ends with 4 trials, none
  lost or repeated.

Every job is checked against Slurm itself (``squeue -t all``), not against the executor's records.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}
WAIT_S = float(os.environ.get("DMLBENCH_SLURM_WAIT_S", "300"))


def _idle_node() -> str | None:
    """Why no Slurm cluster is usable here (None: one is)."""
    if shutil.which("sinfo") is None:
        return "no Slurm client (sinfo) on PATH"
    try:
        answer = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 15 s"
    states = {state.strip("*~#!%$@^-") for state in answer.stdout.split()}
    if answer.returncode != 0 or not states & {"idle", "mixed"}:
        return f"no idle Slurm node (sinfo: {answer.stdout.strip() or answer.stderr.strip()})"
    return None


REASON = _idle_node()
#: DMLBENCH_REQUIRE_SLURM=1 (CI, after start_cluster.sh): no cluster is a failure, not a skip.
REQUIRED = os.environ.get("DMLBENCH_REQUIRE_SLURM") == "1"
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        REASON is not None and not REQUIRED, reason=f"{REASON}; start one with tests/slurm/start_cluster.sh"
    ),
]
#: DMLBENCH_SLURM_PARTITION: the partition every job of these tests goes to (default: the cluster's).
PARTITION = os.environ.get("DMLBENCH_SLURM_PARTITION")


@pytest.fixture(autouse=True)
def _cluster_required():
    """Not skipped although no cluster answers (DMLBENCH_REQUIRE_SLURM=1): fail with the reason."""


def slurm_config_dir(workdir: Path, options: str) -> Path:
    """A config folder whose ``config_general/slurm_test.yaml`` holds ``slurm:`` with ``options``
    (YAML lines, indented) and the test partition if one is set."""
    config_dir = workdir / "configs"
    (config_dir / "config_general").mkdir(parents=True)
    (config_dir / "config_general" / "slurm_test.yaml").write_text(
        "slurm:\n" + options + (f"  partition: {PARTITION}\n" if PARTITION else "")
    )
    return config_dir


def slurm_info(job_id: str) -> tuple[str, str] | None:
    """(state, partition) of a job as Slurm reports it, None once Slurm has forgotten it."""
    for command in (
        ["squeue", "-h", "-t", "all", "-o", "%T|%P", "-j", job_id],
        ["sacct", "-n", "-X", "-P", "-o", "State,Partition", "-j", job_id],
    ):
        answer = subprocess.run(command, capture_output=True, text=True, timeout=30)
        line = answer.stdout.strip()
        if answer.returncode == 0 and line:
            state, partition = line.splitlines()[0].split("|")
            return state.split()[0], partition
    return None


def job_id(folder: Path, kind: str = "trial") -> str | None:
    record = folder / "meta" / f"{kind}_submitit_job.txt"
    if not record.exists():
        return None
    cluster, identifier = record.read_text().split()
    assert cluster == "slurm"
    return identifier


def job_processes(folder: Path) -> list[int]:
    """Pids of the submitit worker processes that run the job whose files are in ``folder/slurm``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"submitit.core._submit" in command and str(folder / "slurm").encode() in command:
                pids.append(int(entry.name))
    return pids


def wait_until(
    condition: Callable[[], object], what: str, driver: subprocess.Popen | None, log: Path
) -> object:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if driver is not None and driver.poll() is not None:
            raise AssertionError(
                f"the search exited ({driver.returncode}) before {what}:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {WAIT_S:.0f} s:\n{log.read_text()[-3000:]}")


def search_command(root: Path, data: Path, config_dir: Path) -> list[str]:
    """The demo search shrunk to seconds, every job through Slurm, 2 jobs at once."""
    return [
        sys.executable,
        str(REPO / "run.py"),
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
        "[default, slurm_test]",
        "--num_epochs_train",
        "1",
        "--iterations_per_epoch",
        "2",
        "--save_interval",
        "1",
        "--batch_size",
        "16",
        "--check_untrained_accuracy",
        "false",
        "--dataset~APPLY~2",
        "{num_classes: 16, images_per_class: 8}",
        "--split_manager~APPLY~2",
        "{num_training_partitions: 2, num_training_sets: 2}",
        "--loss_funcs~APPLY~3",
        "{alpha~LOG_BAYESIAN~: [0.5, 10]}",
        "--bayes_opt_iters",
        "4",
        "--sobol_trials",
        "2",
        "--reproductions",
        "0",
        "--trial_executor",
        "slurm",
        "--max_parallel_trials",
        "2",
    ]


@pytest.fixture
def workdir(tmp_path):
    """A folder the compute node sees (DMLBENCH_SLURM_WORKDIR on a multi-node cluster); every
    Slurm job the test leaves behind is cancelled by its id."""
    base = (
        Path(os.environ["DMLBENCH_SLURM_WORKDIR"]) / tmp_path.name
        if "DMLBENCH_SLURM_WORKDIR" in os.environ
        else tmp_path
    )
    base.mkdir(parents=True, exist_ok=True)
    yield base
    ids = {
        path.read_text().split()[1]
        for path in base.glob("logs/slurm_search/trials/trial_*/meta/*_submitit_job.txt")
    }
    ids |= {
        path.name.split("_")[0]
        for path in base.glob("logs/slurm_search/trials/trial_*/slurm/*_submitted.pkl")
    }
    if ids:
        subprocess.run(["scancel", *sorted(ids)], capture_output=True, timeout=30)


def test_search_on_slurm_survives_scancel_killed_jobs_and_a_killed_driver(workdir):
    config_dir = slurm_config_dir(workdir, "  time: 15\n  cpus_per_task: 1\n  mem_gb: 1\n  retries: 1\n")
    experiment = workdir / "logs" / "slurm_search"
    trials = experiment / "trials"
    command = search_command(workdir / "logs", workdir / "data", config_dir)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    first_log, second_log = workdir / "first_run.log", workdir / "second_run.log"

    with open(first_log, "w") as log:
        driver = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # trials 0 and 1 are Slurm jobs
        first = [
            wait_until(
                lambda i=i: job_id(trials / f"trial_{i:04d}"), f"Slurm job for trial {i}", driver, first_log
            )
            for i in range(2)
        ]
        for identifier in first:
            assert slurm_info(identifier) is not None, f"Slurm does not know job {identifier}"
        # once each runs: SIGKILL trial 0's job process, scancel trial 1's job (this order works on one CPU too)
        for pid in wait_until(
            lambda: job_processes(trials / "trial_0000"), "running process for trial 0", driver, first_log
        ):
            os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: job_processes(trials / "trial_0001"), "running process for trial 1", driver, first_log
        )
        subprocess.run(["scancel", first[1]], check=True, timeout=30)
        # the killed job is resubmitted; once trial 2 runs, suspend its job and SIGKILL the driver
        wait_until(
            lambda: job_id(trials / "trial_0000") not in (None, first[0]),
            "resubmission of trial 0",
            driver,
            first_log,
        )
        third = wait_until(lambda: job_id(trials / "trial_0002"), "Slurm job for trial 2", driver, first_log)
        wait_until(
            lambda: job_processes(trials / "trial_0002"), "running process for trial 2", driver, first_log
        )
        subprocess.run(["scontrol", "suspend", third], check=True, timeout=30)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert not (experiment / "meta" / "report.json").exists()
    assert slurm_info(third)[0] == "SUSPENDED"  # the trial's job outlives the driver

    with open(second_log, "w") as log:  # the same command again; trial 2's job goes on once it is reattached
        rerun = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(
            lambda: "trial 2: still running as a job" in second_log.read_text(),
            "reattachment of trial 2",
            rerun,
            second_log,
        )
        subprocess.run(["scontrol", "resume", third], check=True, timeout=30)
        rerun.wait(timeout=3 * WAIT_S)
    finally:
        if rerun.poll() is None:
            rerun.kill()
    second = second_log.read_text()
    assert rerun.returncode == 0, second[-3000:]

    first_output = first_log.read_text()
    assert "resubmitted as job" in first_output and "trial 1 FAILED" in first_output
    assert "trial 2: still running as a job; waiting for it" in second
    # no trial lost or repeated; the cancelled one failed, with the reason in its folder
    assert sorted(p.name for p in trials.iterdir() if p.is_dir()) == [f"trial_{i:04d}" for i in range(4)]
    with open(experiment / "meta" / "csv" / "trials.csv") as file:
        table = {int(row["trial"]): row for row in csv.DictReader(file)}
    assert {index: row["status"] for index, row in table.items()} == {
        0: "COMPLETED",
        1: "FAILED",
        2: "COMPLETED",
        3: "COMPLETED",
    }
    reason = (trials / "trial_0001" / "meta" / "job_error.txt").read_text()
    assert f"job {first[1]} was cancelled (scancel) without a result; log: " in reason
    report = json.loads((experiment / "meta" / "report.json").read_text())
    assert report["trial_counts"] == {"COMPLETED": 3, "FAILED": 1, "ABANDONED": 0, "RUNNING": 0}

    # Slurm's own record of every job, and where each job's log went
    best = report["best_trial"]["index"]
    test_job = job_id(trials / f"trial_{best:04d}", "test")  # the best trial's test: in its folder too
    submitted = {
        i: sorted(
            p.name.split("_")[0]
            for p in (trials / f"trial_{i:04d}" / "slurm").glob("*_submitted.pkl")
            if p.name.split("_")[0] != test_job
        )
        for i in range(4)
    }
    assert len(submitted[0]) == 2 and first[0] in submitted[0]  # killed once, resubmitted once
    assert submitted[1] == [first[1]]
    assert submitted[2] == [third]  # reattached after the driver's restart, not submitted again
    assert len(submitted[3]) == 1
    states = {identifier: slurm_info(identifier) for ids in submitted.values() for identifier in ids}
    expected = {identifier: "COMPLETED" for identifier in states}
    expected.update({first[0]: "FAILED", first[1]: "CANCELLED"})  # killed, cancelled
    assert {identifier: state and state[0] for identifier, state in states.items()} == expected
    assert slurm_info(test_job)[0] == "COMPLETED"
    partitions = {state[1] for state in states.values()}
    assert len(partitions) == 1 and (PARTITION is None or partitions == {PARTITION})
    for index in (0, 2, 3):
        folder = trials / f"trial_{index:04d}"
        assert (
            "epoch 1" in (folder / "slurm" / f"{job_id(folder)}_0_log.err").read_text()
        )  # training progress
        assert (
            json.loads((folder / "meta" / "trial_result.json").read_text())["metric"]
            == "mean_average_precision_at_r"
        )


def test_search_with_two_processes_per_trial_on_slurm(workdir):
    """``slurm: {processes: 2}``: every trial is one Slurm job of two tasks that train its folds
    data-parallel (gloo); the objective equals the same trial trained in one process."""
    from dmlbench.config.experiment_files import config_dir as configs_of
    from dmlbench.config.experiment_files import load_saved_configs, save_configs
    from dmlbench.search.jobs import run_job

    config_dir = slurm_config_dir(workdir, "  processes: 2\n  time: 15\n  cpus_per_task: 1\n  mem_gb: 1\n")
    command = search_command(workdir / "logs", workdir / "data", config_dir)
    command[command.index("--bayes_opt_iters") + 1] = "2"
    # deterministic images and frozen trunk BatchNorm: two processes see exactly one process's batches
    command += [
        "--transforms~OVERRIDE~",
        "{train: {Resize: {size: 32}}, eval: {Resize: {size: 32}}}",
        "--freeze_trunk_batchnorm",
        "true",
    ]
    log = workdir / "search.log"
    with open(log, "w") as output:
        done = subprocess.run(
            command,
            cwd=workdir,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=3 * WAIT_S,
        )
    assert done.returncode == 0, log.read_text()[-3000:]

    trials = workdir / "logs" / "slurm_search" / "trials"
    report = json.loads((trials.parent / "meta" / "report.json").read_text())
    assert report["trial_counts"]["COMPLETED"] == 2
    for index in range(2):
        folder = trials / f"trial_{index:04d}"
        identifier = job_id(folder)
        answer = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%T %C", "-j", identifier],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert answer.stdout.split() == ["COMPLETED", "2"]  # one job, two CPUs: its two tasks
        logs = [folder / "slurm" / f"{identifier}_{task}_log.err" for task in (0, 1)]
        assert "epoch 1" in logs[0].read_text() and "epoch 1" not in logs[1].read_text()  # rank 0 reports

    # the same trial in one process (this one) gives the same objective
    pair = trials / "trial_0000"
    single = workdir / "single"
    configs_of(single).mkdir(parents=True)
    save_configs(load_saved_configs(pair), configs_of(single))
    reference = run_job("trial", single, workdir / "data")
    result = json.loads((pair / "meta" / "trial_result.json").read_text())
    for scheme, score in reference["per_fold"].items():
        assert result["per_fold"][scheme] == pytest.approx(score, abs=1e-4), scheme


def test_a_torchrun_run_as_a_batch_script(workdir):
    """docs/distributed.md's batch script: ``sbatch`` a job whose one task runs ``torchrun
    --nproc_per_node 2 run.py ...``; the run trains over two processes and writes one report."""
    run_args = [
        "--reproduce_results",
        str(REPO / "exp_configs" / "demo"),
        "--merge_argparse_when_resuming",
        "--experiment_name",
        "ddp_run",
        "--root_experiment_folder",
        str(workdir / "logs"),
        "--dataset_root",
        str(workdir / "data"),
        "--dataset~APPLY~2",
        "{num_classes: 16, images_per_class: 8}",
        "--split_manager~APPLY~2",
        "{num_training_partitions: 2, num_training_sets: 1}",
        "--num_epochs_train",
        "1",
        "--iterations_per_epoch",
        "2",
        "--batch_size",
        "16",
        "--check_untrained_accuracy",
        "false",
    ]
    script = workdir / "ddp_run.sbatch"
    script.write_text(
        "\n".join(
            [
                "#!/bin/bash",
                "#SBATCH --job-name=dmlbench_ddp --nodes=1 --ntasks-per-node=1 --cpus-per-task=2 --mem=2G --time=15",
                f"#SBATCH --output={workdir}/ddp_run_%j.log",
                *([f"#SBATCH --partition={PARTITION}"] if PARTITION else []),
                f"export PYTHONPATH={REPO}",
                f"srun {sys.executable} -m torch.distributed.run --standalone --nproc_per_node 2 {REPO / 'run.py'} "
                + " ".join(f"'{arg}'" for arg in run_args),
                "",
            ]
        )
    )
    done = subprocess.run(
        ["sbatch", "--parsable", "--wait", str(script)],
        capture_output=True,
        text=True,
        timeout=3 * WAIT_S,
        cwd=workdir,
    )
    identifier = done.stdout.strip().split(";")[0]
    log = workdir / f"ddp_run_{identifier}.log"
    assert done.returncode == 0, done.stderr + (log.read_text()[-3000:] if log.exists() else "")
    assert slurm_info(identifier)[0] == "COMPLETED"
    output = log.read_text()
    assert output.count("report: ") == 1  # rank 0 alone prints and writes the report
    experiment = workdir / "logs" / "ddp_run"
    assert sorted(p.name for p in (experiment / "meta").glob("report.*")) == [
        "report.html",
        "report.json",
        "report.md",
    ]
    assert json.loads((experiment / "meta" / "report.json").read_text())["results"]["test"]["trained"]


class FailsToJoin:
    """The search's trial job, except that the process of rank 1 raises before joining the process
    group (as when a file it needs is missing on its node)."""

    def __init__(self, folder: Path, data: Path) -> None:
        self.folder, self.data = str(folder), str(data)

    def __call__(self):
        from dmlbench.search import jobs

        jobs.export_task_environment()
        if os.environ["RANK"] == "1":

            def broken(job_dir):
                raise ValueError("process 1 cannot join")

            jobs.join_process_group = broken
        return jobs.SearchJob("trial", self.folder, self.data)()


def test_a_two_process_job_ends_when_one_process_fails(workdir):
    """Rank 1 fails before the rendezvous, rank 0 waits there (torch's timeout: 30 minutes): with
    ``srun --kill-on-bad-exit=1`` Slurm ends the job at once, and the search reports rank 1's error."""
    import cloudpickle
    import submitit

    from dmlbench.cli import main
    from dmlbench.config.experiment_files import config_dir as configs_of
    from dmlbench.config.experiment_files import load_saved_configs, save_configs
    from dmlbench.search.executor_common import JobSpec
    from dmlbench.search.slurm_executor import SubmititExecutor, SubmititHandle

    data = workdir / "data"
    assert (
        main(
            [
                "--reproduce_results",
                str(REPO / "exp_configs" / "demo"),
                "--merge_argparse_when_resuming",
                "--experiment_name",
                "source",
                "--root_experiment_folder",
                str(workdir / "logs"),
                "--dataset_root",
                str(data),
                "--dataset~APPLY~2",
                "{num_classes: 16, images_per_class: 8}",
                "--split_manager~APPLY~2",
                "{num_training_partitions: 2, num_training_sets: 1}",
                "--num_epochs_train",
                "1",
                "--iterations_per_epoch",
                "1",
                "--batch_size",
                "16",
                "--check_untrained_accuracy",
                "false",
            ]
        )
        == 0
    )
    folder = workdir / "trial"
    configs_of(folder).mkdir(parents=True)
    save_configs(load_saved_configs(workdir / "logs" / "source"), configs_of(folder))
    executor = SubmititExecutor(
        {
            "processes": 2,
            "time": 5,
            "cpus_per_task": 1,
            "mem_gb": 1,
            **({"partition": PARTITION} if PARTITION else {}),
        }
    )
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the job cannot import this file
    submitter = submitit.AutoExecutor(folder=str(folder / "slurm"), cluster="slurm")
    submitter.update_parameters(**executor.parameters)
    job = submitter.submit(FailsToJoin(folder, data))
    try:
        handle = SubmititHandle(JobSpec("trial", folder, data), job, executor)
        started = time.monotonic()
        wait_until(handle.done, "end of the job", None, folder / "slurm" / f"{job.job_id}_0_log.err")
        assert (
            time.monotonic() - started < 90
        )  # Slurm's KillWait (30 s at most by default), not torch's 30 min
        assert slurm_info(job.job_id)[0] == "FAILED"
        assert handle.job.job_id == job.job_id  # a Python error: not resubmitted
        assert handle.failure() == "ValueError: process 1 cannot join"
        assert (folder / "meta" / "job_error.txt").read_text().startswith("process 1 of 2 failed:\n")
    finally:
        subprocess.run(["scancel", job.job_id], capture_output=True, timeout=30)
