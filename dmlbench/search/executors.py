"""Trial executors: where the search's jobs (:mod:`dmlbench.search.jobs`) run.

- ``local`` (default): one job at a time, in the search's own process.
- ``local_parallel``: up to ``max_parallel`` jobs at once, one child process each
  (``python -m dmlbench.search.jobs ...``); with GPUs visible each child gets one of them
  (``CUDA_VISIBLE_DEVICES``), on CPU the cores are shared out (``OMP_NUM_THREADS``). Children
  die with the search (Linux ``PR_SET_PDEATHSIG``).
- ``slurm``: one submitit job per search job (no job arrays: each job's submitit files and Slurm
  logs go to its own folder, ``<trial>/slurm/<job id>_0_log.{out,err}``). Options come from the
  ``slurm`` mapping of config_general, e.g.::

      slurm:
        partition: gpu          # -> slurm_partition
        time: 1440              # minutes -> timeout_min (default 1440)
        gpus_per_node: 1
        cpus_per_task: 8
        mem_gb: 64
        max_parallel: 16        # jobs at once (default 8; old name array_parallelism)
        retries: 1              # resubmissions of a job killed from outside (default 1)
        processes: 1            # tasks per job (-> tasks_per_node): > 1 trains data-parallel
        cluster: slurm          # submitit cluster; "local" runs the same path on this machine
                                # (each running job on its own `gpus` of the visible GPUs)
        # any other submitit parameter by its own name, e.g. slurm_qos: high

  Job states come from ``squeue`` (:mod:`dmlbench.search.slurm_queue`), so clusters without
  accounting (no ``sacct``) work too. A job that ends without a result: if its trial raised, the
  error is reported (``meta/job_error.txt``); if it was cancelled (``scancel``), it is reported as
  cancelled and not resubmitted (that is how to stop one trial); otherwise (killed, node failure,
  out of memory) it is resubmitted up to ``retries`` times, resuming from its checkpoints, and then
  reported. A search marks a reported trial FAILED and goes on.

A handle reports ``done()`` and then ``failure()`` (None on success); results are read from the
job's folder, so the executor never has to carry them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dmlbench.errors import ConfigError
from dmlbench.search.jobs import read_error, read_result, run_job

EXECUTORS = ("local", "local_parallel", "slurm")
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class JobSpec:
    kind: str
    job_dir: Path
    dataset_root: Path


class JobHandle(Protocol):
    spec: JobSpec

    def done(self) -> bool: ...

    def failure(self) -> str | None: ...


def _failure_from_folder(spec: JobSpec, fallback: str) -> str | None:
    if read_result(spec.kind, spec.job_dir) is not None:
        return None
    message = read_error(spec.job_dir)
    return fallback if message == "no result and no error recorded" else message


def _python_path() -> str:
    """PYTHONPATH that finds dmlbench, split_managers and plugins from any working directory."""
    existing = os.environ.get("PYTHONPATH")
    return str(REPOSITORY_ROOT) + (os.pathsep + existing if existing else "")


# ---------------------------------------------------------------------------------- local
class FinishedHandle:
    def __init__(self, spec: JobSpec, failure: str | None) -> None:
        self.spec, self._failure = spec, failure

    def done(self) -> bool:
        return True

    def failure(self) -> str | None:
        return self._failure


class InProcessExecutor:
    """Runs each job to completion inside ``submit`` (sequential search)."""

    name = "local"
    capacity = 1

    def submit(self, specs: Sequence[JobSpec]) -> list[JobHandle]:
        handles: list[JobHandle] = []
        for spec in specs:
            try:
                run_job(spec.kind, spec.job_dir, spec.dataset_root)
                handles.append(FinishedHandle(spec, None))
            except Exception as error:  # the traceback is in meta/job_error.txt
                handles.append(FinishedHandle(spec, f"{type(error).__name__}: {error}"))
        return handles

    def reattach(self, spec: JobSpec) -> JobHandle | None:
        return None

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------- local_parallel
def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def visible_gpus() -> list[str]:
    """GPU ids this process may use (from CUDA_VISIBLE_DEVICES, else every device torch sees)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip() and gpu.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


class ProcessHandle:
    def __init__(self, spec: JobSpec, process: subprocess.Popen, gpu: str | None, log: Any) -> None:
        self.spec, self.process, self.gpu, self._log = spec, process, gpu, log

    def done(self) -> bool:
        finished = self.process.poll() is not None
        if finished and not self._log.closed:
            self._log.close()
        return finished

    def failure(self) -> str | None:
        return _failure_from_folder(self.spec, f"process exited with code {self.process.returncode}")


class ProcessExecutor:
    """One child process per job, at most ``capacity`` at once; with GPUs each job gets the GPU
    running the fewest jobs, ``trials_per_gpu`` jobs per GPU by default (``--trials_per_gpu``:
    small trials leave a GPU mostly idle, several share it)."""

    name = "local_parallel"

    def __init__(self, capacity: int | None = None, trials_per_gpu: int = 1) -> None:
        self.gpus = visible_gpus()
        self.capacity = capacity or (len(self.gpus) * trials_per_gpu if self.gpus else 2)
        if trials_per_gpu > 1 and not self.gpus:
            print(
                f"note: --trials_per_gpu {trials_per_gpu} has no effect without a visible GPU; "
                f"{self.capacity} trials run at once on the CPU cores",
                file=sys.stderr,
            )
        self.running: list[ProcessHandle] = []

    def _free_gpu(self) -> str | None:
        if not self.gpus:
            return None
        load = {gpu: 0 for gpu in self.gpus}
        for handle in self.running:
            if handle.gpu in load and not handle.done():
                load[handle.gpu] += 1
        return min(self.gpus, key=lambda gpu: load[gpu])  # the least busy; ties: the first

    def submit(self, specs: Sequence[JobSpec]) -> list[JobHandle]:
        handles: list[JobHandle] = []
        for spec in specs:
            env = dict(os.environ, PYTHONPATH=_python_path(), PYTHONUNBUFFERED="1")
            gpu = self._free_gpu()
            if gpu is not None:
                env["CUDA_VISIBLE_DEVICES"] = gpu
            elif "OMP_NUM_THREADS" not in os.environ:
                env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.capacity))
            spec.job_dir.mkdir(parents=True, exist_ok=True)
            log = open(spec.job_dir / f"{spec.kind}_job.log", "ab")
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dmlbench.search.jobs",
                    spec.kind,
                    str(spec.job_dir),
                    str(spec.dataset_root),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            handle = ProcessHandle(spec, process, gpu, log)
            self.running = [h for h in self.running if not h.done()] + [handle]
            handles.append(handle)
        return handles

    def reattach(self, spec: JobSpec) -> JobHandle | None:
        return None  # children die with the search; a resubmitted job resumes from its checkpoints

    def close(self) -> None:
        for handle in self.running:
            if not handle.done():
                handle.process.terminate()


def check_one_gpu_device(device: Any) -> None:
    """``local_parallel`` gives each trial one GPU as its only visible device (``cuda:0`` in the
    trial): a config naming another index (``device: cuda:1``) would fail in every trial."""
    if isinstance(device, str) and device.startswith("cuda:") and device != "cuda:0":
        raise ConfigError(
            f"device: {device} with --trial_executor local_parallel: each trial sees only the GPU "
            "it is given (as cuda:0); set device: cuda or auto, and choose the GPUs with "
            "CUDA_VISIBLE_DEVICES"
        )


def make_executor(name: str, settings: dict[str, Any], capacity: int | None, trials_per_gpu: int = 1) -> Any:
    """The executor ``--trial_executor name`` asks for."""
    if capacity is not None and capacity < 1:
        raise ConfigError(f"--max_parallel_trials must be >= 1, got {capacity}")
    if name == "local":
        if capacity not in (None, 1):
            raise ConfigError(
                "--trial_executor local runs one trial at a time; use local_parallel "
                f"for --max_parallel_trials {capacity}"
            )
        return InProcessExecutor()
    if name == "local_parallel":
        check_one_gpu_device(settings.get("device"))
        return ProcessExecutor(capacity, trials_per_gpu)
    if name == "slurm":
        from dmlbench.search.slurm_executor import SubmititExecutor

        return SubmititExecutor(settings.get("slurm") or {}, capacity)
    import difflib

    close = difflib.get_close_matches(name, EXECUTORS, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ConfigError(f"--trial_executor {name!r} is unknown{hint} (choices: {', '.join(EXECUTORS)})")


def wait_any(handles: Sequence[JobHandle], poll_s: float = 0.25) -> list[JobHandle]:
    """Block until at least one handle is done; return the done ones."""
    while True:
        done = [handle for handle in handles if handle.done()]
        if done or not handles:
            return done
        time.sleep(poll_s)
