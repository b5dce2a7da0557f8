"""What every trial executor shares: the job a search submits, the handle it gets back, how a
job's folder tells its outcome, the PYTHONPATH and GPUs a job's processes get."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dmlbench.search.jobs import read_error, read_result

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


def failure_from_folder(spec: JobSpec, fallback: str) -> str | None:
    """None when the job left its result; else the error it recorded, or ``fallback``."""
    if read_result(spec.kind, spec.job_dir) is not None:
        return None
    message = read_error(spec.job_dir)
    return fallback if message == "no result and no error recorded" else message


def python_path() -> str:
    """PYTHONPATH that finds dmlbench, split_managers and plugins from any working directory."""
    existing = os.environ.get("PYTHONPATH")
    return str(REPOSITORY_ROOT) + (os.pathsep + existing if existing else "")


def visible_gpus() -> list[str]:
    """GPU ids this process may use (from CUDA_VISIBLE_DEVICES, else every device torch sees)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip() and gpu.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def wait_any(handles: Sequence[JobHandle], poll_s: float = 0.25) -> list[JobHandle]:
    """Block until at least one handle is done; return the done ones."""
    while True:
        done = [handle for handle in handles if handle.done()]
        if done or not handles:
            return done
        time.sleep(poll_s)
