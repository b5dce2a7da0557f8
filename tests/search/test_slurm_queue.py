"""Slurm job states without a cluster: squeue and sacct answers written by hand (in the formats
Slurm 22.05 prints, as seen on the test cluster of tests/slurm/), and the slurm executor's
decisions on a job that ends without a result (retry, cancelled, Python error)."""

import subprocess
from pathlib import Path
from types import SimpleNamespace

from dmlbench.search.executor_common import JobSpec
from dmlbench.search.slurm_executor import SubmititHandle
from dmlbench.search.slurm_queue import GONE, SlurmQueue, query_states


def fake_slurm(squeue: tuple[int, str, str], sacct: tuple[int, str, str] | None = None, calls=None):
    """A runner that answers squeue and sacct with (returncode, stdout, stderr)."""

    def run(command):
        if calls is not None:
            calls.append(command)
        returncode, stdout, stderr = squeue if command[0] == "squeue" else sacct
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)

    return run


NO_ACCOUNTING = (1, "", "Slurm accounting storage is disabled\n")


def test_states_from_squeue_then_sacct_then_gone():
    calls = []
    run = fake_slurm(
        (0, "12|RUNNING\n13|CANCELLED\n14_2|PENDING\n", ""), (0, "15|CANCELLED by 0\n", ""), calls
    )
    assert query_states(["12", "13", "14_2", "15", "16"], run) == {
        "12": "RUNNING",
        "13": "CANCELLED",
        "14_2": "PENDING",
        "15": "CANCELLED",
        "16": GONE,
    }
    assert calls[0][:7] == ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T"]  # finished jobs included
    assert calls[1][-1] == "15,16"  # only the jobs squeue no longer lists go to sacct


def test_without_accounting_a_forgotten_job_is_gone_and_a_failed_squeue_says_nothing():
    forgotten = fake_slurm((1, "", "slurm_load_jobs error: Invalid job id specified\n"), NO_ACCOUNTING)
    assert query_states(["7"], forgotten) == {"7": GONE}
    down = fake_slurm(
        (1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n")
    )
    assert query_states(["7"], down) is None


def test_the_queue_polls_once_per_interval_and_stops_polling_ended_jobs():
    calls = []
    queue = SlurmQueue(interval_s=3600, run=fake_slurm((0, "1|COMPLETED\n2|RUNNING\n", ""), calls=calls))
    queue.watch("1")
    queue.watch("2")
    assert queue.state("1") == "COMPLETED" and queue.state("2") == "RUNNING"
    assert len(calls) == 1  # one squeue call for both, then nothing until the interval is over
    queue.interval_s = 0
    queue.state("2")
    assert calls[-1][-1] == "2"  # the ended job is no longer asked about


class FakeJob:
    def __init__(self, folder: Path, job_id: str) -> None:
        self.job_id = job_id
        self.paths = SimpleNamespace(
            result_pickle=folder / f"{job_id}_0_result.pkl", stderr=folder / f"{job_id}_0_log.err"
        )


class FakeExecutor:
    """Jobs 1, 2, ... whose Slurm states the test sets."""

    cluster = "slurm"

    def __init__(self, folder: Path, states: dict[str, str], retries: int) -> None:
        self.folder, self.states, self.retries, self.submitted = folder, states, retries, []
        self.queue = SimpleNamespace(state=lambda job_id: self.states.get(job_id))

    def submit_one(self, spec):
        job = FakeJob(self.folder, str(len(self.submitted) + 1))
        self.submitted.append(job.job_id)
        return job


def handle_for(tmp_path, states, retries=1):
    spec = JobSpec("trial", tmp_path / "trial_0000", tmp_path)
    (spec.job_dir / "meta").mkdir(parents=True)
    executor = FakeExecutor(tmp_path, states, retries)
    return SubmititHandle(spec, executor.submit_one(spec), executor), executor, spec


def test_a_killed_job_is_resubmitted_once_then_reported(tmp_path):
    handle, executor, spec = handle_for(tmp_path, {"1": "RUNNING"})
    assert not handle.done()
    executor.states["1"] = "NODE_FAIL"
    assert not handle.done() and executor.submitted == ["1", "2"]  # retried
    executor.states["2"] = "FAILED"
    assert handle.done() and executor.submitted == ["1", "2"]  # retries used up
    assert handle.failure() == "slurm job 2 ended FAILED without a result; it never started"
    assert (spec.job_dir / "meta" / "job_error.txt").read_text().startswith("slurm job 2 ended FAILED")


def test_a_local_job_killed_without_a_result_is_reported_without_a_slurm_state(tmp_path):
    handle, executor, spec = handle_for(tmp_path, {})
    executor.cluster, executor.queue = "local", None  # submitit's local executor: no Slurm state
    handle.job.done = lambda: True  # its process was killed: no result pickle
    handle.job.paths.stderr.write_text("")
    assert handle.done()
    assert handle.failure() == f"local job 1 ended without a result; log: {handle.job.paths.stderr}"


def test_a_cancelled_job_is_not_resubmitted(tmp_path):
    handle, executor, spec = handle_for(tmp_path, {"1": "CANCELLED"})
    (tmp_path / "1_0_log.err").write_text("slurmstepd: *** JOB 1 ON node CANCELLED ***\n")
    assert handle.done() and executor.submitted == ["1"]
    assert (
        handle.failure()
        == f"slurm job 1 was cancelled (scancel) without a result; log: {tmp_path / '1_0_log.err'}"
    )


def test_a_python_error_is_reported_as_is_and_not_retried(tmp_path):
    handle, executor, spec = handle_for(tmp_path, {"1": "FAILED"}, retries=3)
    (spec.job_dir / "meta" / "job_error.txt").write_text("Traceback ...\nValueError: bad margin\n")
    assert handle.done() and executor.submitted == ["1"]
    assert handle.failure() == "ValueError: bad margin"


def test_a_job_gone_from_slurm_with_its_result_written_succeeded(tmp_path):
    handle, executor, spec = handle_for(tmp_path, {"1": GONE})
    (spec.job_dir / "meta" / "trial_result.json").write_text('{"mean": 0.5}')
    (tmp_path / "1_0_result.pkl").write_bytes(b"")
    assert handle.done() and handle.failure() is None


def test_a_preempted_job_that_slurm_did_not_requeue_is_resubmitted(tmp_path):
    handle, executor, spec = handle_for(tmp_path, {"1": "PREEMPTED"})
    assert not handle.done() and executor.submitted == ["1", "2"]
