"""Slurm job states for the search's ``slurm`` executor, read with ``squeue`` (one call for all
watched jobs, at most every ``interval_s``), and with ``sacct`` for jobs squeue has forgotten.

submitit reads states with ``sacct`` only; on a cluster without accounting storage (no slurmdbd,
``sacct`` answers "Slurm accounting storage is disabled") a job that ended without writing its
result, e.g. cancelled with ``scancel``, stays ``UNKNOWN`` to submitit forever and a search
waiting on it would hang. ``squeue -t all`` lists finished jobs for ``MinJobAge`` seconds (300 by
default) after they end; a job gone from both squeue and sacct has ended in an unknown state.

States: ``None`` (not known yet: squeue failed or has not answered), one of :data:`ACTIVE`, a
final Slurm state (``COMPLETED``, ``CANCELLED``, ``FAILED``, ``TIMEOUT``, ``NODE_FAIL``,
``OUT_OF_MEMORY``, ...), or :data:`GONE`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable

#: States of a job that has not ended (it may still run, or run again after a requeue). A job
#: requeued after preemption is PENDING again; PREEMPTED means preemption ended it (final).
ACTIVE = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "RESV_DEL_HOLD",
        "SPECIAL_EXIT",
    }
)
#: A job neither squeue nor sacct knows any more: it ended, its final state is lost.
GONE = "GONE"

Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def _parse(stdout: str) -> dict[str, str]:
    """``JOBID|STATE`` lines -> {job id: state}; sacct's ``CANCELLED by 0`` -> ``CANCELLED``."""
    states = {}
    for line in stdout.splitlines():
        if "|" in line:
            job_id, state = line.split("|", 1)
            if job_id.strip() and state.strip():
                states[job_id.strip()] = state.split()[0].upper()
    return states


def query_states(job_ids: Iterable[str], run: Runner = _run) -> dict[str, str] | None:
    """{job id: state} for ``job_ids`` (a forgotten job maps to :data:`GONE`); ``None`` when
    squeue fails for another reason than not knowing the jobs (controller down, timeout)."""
    job_ids = sorted(set(job_ids))
    if not job_ids:
        return {}
    try:
        answer = run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(job_ids)])
    except (OSError, subprocess.SubprocessError):
        return None
    if answer.returncode != 0 and "invalid job id" not in answer.stderr.lower():
        return None
    states = {job_id: state for job_id, state in _parse(answer.stdout).items() if job_id in job_ids}
    forgotten = [job_id for job_id in job_ids if job_id not in states]
    if forgotten:
        try:
            accounted = run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(forgotten)])
            final = _parse(accounted.stdout) if accounted.returncode == 0 else {}
        except (OSError, subprocess.SubprocessError):
            final = {}
        states.update({job_id: final.get(job_id, GONE) for job_id in forgotten})
    return states


class SlurmQueue:
    """Cached states of the watched jobs, refreshed in one ``squeue`` call when older than
    ``interval_s``; a job stops being polled once it has a final state."""

    def __init__(self, interval_s: float = 5.0, run: Runner = _run) -> None:
        self.interval_s, self._run = interval_s, run
        self._states: dict[str, str | None] = {}
        self._checked = float("-inf")

    def watch(self, job_id: str) -> None:
        self._states.setdefault(str(job_id), None)

    def refresh(self) -> None:
        polled = [job_id for job_id, state in self._states.items() if state is None or state in ACTIVE]
        states = query_states(polled, self._run)
        self._checked = time.monotonic()
        if states is not None:
            self._states.update(states)

    def state(self, job_id: str) -> str | None:
        job_id = str(job_id)
        self.watch(job_id)
        current = self._states[job_id]
        if (current is None or current in ACTIVE) and time.monotonic() - self._checked >= self.interval_s:
            self.refresh()
        return self._states[job_id]
