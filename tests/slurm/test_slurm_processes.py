"""Multi-process jobs on a real Slurm cluster (skipped unless ``sinfo`` shows an idle node;
tests/slurm/README.md): a search whose trials are 2-process jobs, docs/distributed.md's torchrun
batch script, and a 2-process job one of whose processes fails before the rendezvous.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_cluster import (
    PARTITION,
    REPO,
    SLURM_MARKS,
    WAIT_S,
    job_id,
    search_command,
    slurm_config_dir,
    slurm_info,
    wait_until,
)

pytestmark = SLURM_MARKS


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
