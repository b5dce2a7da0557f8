"""Local trial executors: ``local`` (in the search's process) and ``local_parallel`` (child
processes); :mod:`dmlbench.search.executor_factory` describes every executor and makes them."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from dmlbench.errors import ConfigError
from dmlbench.search.executor_common import JobHandle, JobSpec, failure_from_folder, python_path, visible_gpus
from dmlbench.search.jobs import run_job


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


class ProcessHandle:
    def __init__(self, spec: JobSpec, process: subprocess.Popen, gpu: str | None, log: Any) -> None:
        self.spec, self.process, self.gpu, self._log = spec, process, gpu, log

    def done(self) -> bool:
        finished = self.process.poll() is not None
        if finished and not self._log.closed:
            self._log.close()
        return finished

    def failure(self) -> str | None:
        return failure_from_folder(self.spec, f"process exited with code {self.process.returncode}")


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
            env = dict(os.environ, PYTHONPATH=python_path(), PYTHONUNBUFFERED="1")
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
