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
import signal
import subprocess

from slurm_cluster import (
    PARTITION,
    REPO,
    SLURM_MARKS,
    WAIT_S,
    job_id,
    job_processes,
    search_command,
    slurm_config_dir,
    slurm_info,
    wait_until,
)

pytestmark = SLURM_MARKS


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
