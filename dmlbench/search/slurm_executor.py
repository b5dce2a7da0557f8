"""The ``slurm`` trial executor: one submitit job per search job (see :mod:`dmlbench.search.executor_factory`
for the options). Slurm job states come from :mod:`dmlbench.search.slurm_queue`."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmlbench.errors import ConfigError
from dmlbench.fileio import write_text_atomic
from dmlbench.search.executor_common import JobHandle, JobSpec, failure_from_folder, python_path, visible_gpus
from dmlbench.search.jobs import SearchJob, read_result
from dmlbench.search.layout import JOB_ERROR
from dmlbench.search.slurm_queue import ACTIVE, SlurmQueue

#: Parallel jobs when slurm.max_parallel and --max_parallel_trials are both unset.
DEFAULT_SLURM_PARALLELISM = 8
#: Resubmissions of a Slurm job that ended without a result and without a Python error.
DEFAULT_SLURM_RETRIES = 1
#: Where a job's submitit files and Slurm logs go, inside the job's own folder.
SUBMITIT_DIR = "slurm"
#: Keys of the ``slurm`` config mapping that the executor reads itself (not submitit options).
EXECUTOR_KEYS = ("max_parallel", "array_parallelism", "retries")
#: Friendly names in the ``slurm`` config mapping -> submitit parameter names.
SLURM_ALIASES = {
    "partition": "slurm_partition",
    "time": "timeout_min",
    "gpus": "gpus_per_node",
    "processes": "tasks_per_node",
    "constraint": "slurm_constraint",
    "qos": "slurm_qos",
    "account": "slurm_account",
}


def submitit_parameters(options: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The ``slurm`` config mapping, less the executor's own keys (``cluster``, ``max_parallel``
    / ``array_parallelism``, ``retries``) -> (submitit cluster, ``update_parameters`` kwargs)."""
    if not isinstance(options, dict):
        raise ConfigError(f"slurm: expected a mapping of submitit options, got {options!r}")
    for first, second in [*SLURM_ALIASES.items(), ("max_parallel", "array_parallelism")]:
        if first in options and second in options:
            raise ConfigError(
                f"slurm: {first} and {second} are the same option, given twice "
                f"({options[first]!r} and {options[second]!r}); keep one"
            )
    options = {key: value for key, value in options.items() if key not in EXECUTOR_KEYS}
    cluster = options.pop("cluster", None)
    parameters = {SLURM_ALIASES.get(key, key): value for key, value in options.items()}
    parameters.setdefault("name", "dmlbench")
    parameters.setdefault("timeout_min", 24 * 60)
    return cluster, parameters


def _count_option(options: dict[str, Any], keys: Sequence[str], default: int, minimum: int) -> int:
    for key in keys:
        if options.get(key) is not None:
            value = options[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"slurm.{key}: expected an integer >= {minimum}, got {value!r}")
            return value
    return default


def check_processes(options: dict[str, Any]) -> None:
    """``processes`` (tasks per node) is a positive integer, and with GPUs each process has its own:
    rank r of a node uses cuda:LOCAL_RANK."""
    processes = _count_option(options, ("processes", "tasks_per_node"), 1, 1)
    gpus = options.get("gpus", options.get("gpus_per_node"))
    if processes > 1 and isinstance(gpus, int) and 0 < gpus < processes:
        raise ConfigError(
            f"slurm: {processes} processes per node but gpus: {gpus}; every process needs its own "
            f"GPU (set gpus: {processes}, or processes: {gpus})"
        )


def kill_step_on_bad_exit(parameters: dict[str, Any]) -> dict[str, Any]:
    """Several tasks: ``srun --kill-on-bad-exit=1`` (unless ``slurm_srun_args`` says otherwise), so
    that a task that fails or dies ends the job. Slurm's default waits for the other tasks, which
    wait for it in a collective call or the rendezvous until torch's timeout (10-30 minutes)."""
    srun_args = [str(arg) for arg in parameters.get("slurm_srun_args") or []]
    if parameters.get("tasks_per_node", 1) * parameters.get("nodes", 1) == 1:
        return parameters
    if any(arg.startswith(("--kill-on-bad-exit", "-K")) for arg in srun_args):
        return parameters
    return {**parameters, "slurm_srun_args": [*srun_args, "--kill-on-bad-exit=1"]}


def _set_local_gpus(executor: Any, gpus: list[int]) -> list[int] | None:
    """Give a local submitit job these GPUs (the LocalExecutor behind AutoExecutor, a private
    attribute); None, with a warning, where this submitit version has no such path."""
    try:
        executor._executor.update_parameters(visible_gpus=gpus)
    except (AttributeError, TypeError, ValueError) as error:
        import warnings

        warnings.warn(
            f"slurm: {{cluster: local}}: cannot choose the job's GPUs with this submitit version ({error}); "
            "concurrent jobs may share the first GPUs"
        )
        return None
    return gpus


class SubmititHandle:
    """One job through submitit. On Slurm its state comes from :class:`SlurmQueue` (squeue, then
    sacct); a job that ended without a result and without a Python error (killed, node failure,
    out of memory; not ``scancel``: CANCELLED) is resubmitted up to ``retries`` times and resumes
    from its checkpoints."""

    def __init__(self, spec: JobSpec, job: Any, executor: SubmititExecutor) -> None:
        self.spec, self.job, self.executor = spec, job, executor
        self.retries_left = executor.retries
        self.end_state: str | None = None
        self._completed_at: float | None = None

    @property
    def log(self) -> Path:
        return Path(self.job.paths.stderr)

    def done(self) -> bool:
        if self.end_state is not None or self.job.paths.result_pickle.exists():
            return True
        queue = self.executor.queue
        if queue is None:  # submitit's local executor knows its own processes
            return bool(self.job.done())
        state = queue.state(self.job.job_id)
        if state is None or state in ACTIVE:
            return False
        if state == "COMPLETED" and self._wait_for_files():
            return False
        python_error = (self.spec.job_dir / JOB_ERROR).exists()
        if state != "CANCELLED" and not python_error and self.retries_left > 0:
            self.retries_left -= 1
            old = self.job.job_id
            self.job = self.executor.submit_one(self.spec)
            print(
                f"[slurm] {self.spec.job_dir}: Slurm job {old} ended {state} without a result; resubmitted as "
                f"job {self.job.job_id} (retries left: {self.retries_left})",
                flush=True,
            )
            return False
        self.end_state = state
        if not python_error:  # the job could not say why it ended: the folder records it for the search
            write_text_atomic(self.spec.job_dir / JOB_ERROR, self._ended_message() + "\n")
        return True

    def _ended_message(self) -> str:
        how = (
            "was cancelled (scancel)"
            if self.end_state == "CANCELLED"
            else f"ended {self.end_state}"
            if self.end_state
            else "ended"
        )  # local: no Slurm state
        log = f"log: {self.log}" if self.log.exists() else "it never started"
        return f"{self.executor.cluster} job {self.job.job_id} {how} without a result; {log}"

    def _wait_for_files(self, grace_s: float = 30.0) -> bool:
        """A COMPLETED job's result may take a moment to show on a shared file system."""
        self._completed_at = self._completed_at or time.monotonic()
        return time.monotonic() - self._completed_at < grace_s

    def failure(self) -> str | None:
        if read_result(self.spec.kind, self.spec.job_dir) is not None:
            return None
        name = f"{self.executor.cluster} job {self.job.job_id}"
        if self.job.paths.result_pickle.exists():  # the job's function returned or raised
            try:
                self.job.task(0).result()  # rank 0's: with several processes, the one that reports
            except Exception as error:  # the job's own traceback is in meta/job_error.txt
                return failure_from_folder(self.spec, f"{name}: {str(error)[-300:]}")
            return failure_from_folder(self.spec, f"{name} left no result")
        return failure_from_folder(self.spec, self._ended_message())


def _checked_parameters(
    cluster: str | None, parameters: dict[str, Any], scratch: str
) -> tuple[str, dict[str, Any]]:
    """The submitit cluster and its parameters, checked by a probe executor whose folder is
    ``scratch`` (each job gets its own folder later): -> (cluster, parameters as jobs get them)."""
    import submitit

    try:
        probe = submitit.AutoExecutor(folder=scratch, cluster=cluster)
    except (ValueError, RuntimeError) as error:
        raise ConfigError(
            f"slurm: submitit cannot start ({error}); on a machine without Slurm set "
            "slurm: {cluster: local} or use --trial_executor local_parallel"
        ) from error
    setup = list(parameters.pop("setup", None) or [])
    if probe.cluster in ("slurm", "local"):  # jobs find dmlbench wherever they start
        parameters[f"{probe.cluster}_setup"] = [f"export PYTHONPATH={python_path()}", *setup]
    if probe.cluster == "local":
        parameters = {k: v for k, v in parameters.items() if not k.startswith("slurm_")}
    elif probe.cluster == "slurm":
        parameters = kill_step_on_bad_exit(parameters)
    try:
        probe.update_parameters(**parameters)
    except (NameError, AssertionError, ValueError, TypeError) as error:
        raise ConfigError(f"slurm: bad submitit option: {str(error).splitlines()[0]}") from error
    return probe.cluster, parameters


class SubmititExecutor:
    """One submitit job per search job (no job arrays), its submitit folder and logs in
    ``<job folder>/slurm/``; Slurm on a cluster, or submitit's local executor."""

    name = "slurm"

    def __init__(self, options: dict[str, Any], capacity: int | None = None) -> None:
        cluster, parameters = submitit_parameters(options)
        check_processes(options)
        with tempfile.TemporaryDirectory(prefix="dmlbench-submitit-probe-") as scratch:
            self.cluster, parameters = _checked_parameters(cluster, parameters, scratch)
        self.parameters = parameters
        self.capacity = capacity or _count_option(
            options, ("max_parallel", "array_parallelism"), DEFAULT_SLURM_PARALLELISM, 1
        )
        self.retries = _count_option(options, ("retries",), DEFAULT_SLURM_RETRIES, 0)
        self.queue = SlurmQueue() if self.cluster == "slurm" else None
        self._local_jobs: list[tuple[Any, list[int]]] = []  # cluster local: (job, its GPUs)

    def local_gpus(self) -> list[int] | None:
        """``cluster: local``: the ``gpus`` GPUs for the next job, those running the fewest of its jobs
        (submitit's local executor gives every job the first ones: concurrent jobs would share them
        while the others idle). None: submitit's choice (no GPUs asked, or GPUs named by UUID)."""
        count = int(self.parameters.get("gpus_per_node") or 0)
        if self.cluster != "local" or count == 0:
            return None
        try:
            pool = [int(gpu) for gpu in visible_gpus()]
        except ValueError:
            return None
        if len(pool) < count:
            return None  # submitit (or the job's device check) says what is missing
        self._local_jobs = [(job, gpus) for job, gpus in self._local_jobs if not job.done()]
        load = {gpu: sum(gpu in gpus for _, gpus in self._local_jobs) for gpu in pool}
        return sorted(pool, key=lambda gpu: load[gpu])[:count]  # ties: in the listed order

    def submit_one(self, spec: JobSpec) -> Any:
        import submitit

        executor = submitit.AutoExecutor(folder=str(spec.job_dir / SUBMITIT_DIR), cluster=self.cluster)
        gpus = self.local_gpus()
        executor.update_parameters(**self.parameters)
        if gpus:  # submitit's LocalExecutor option, which AutoExecutor does not pass on
            gpus = _set_local_gpus(executor, gpus)
        job = executor.submit(SearchJob(spec.kind, str(spec.job_dir), str(spec.dataset_root)))
        if gpus:
            self._local_jobs.append((job, gpus))
        (spec.job_dir / "meta").mkdir(parents=True, exist_ok=True)
        write_text_atomic(
            spec.job_dir / "meta" / f"{spec.kind}_submitit_job.txt", f"{self.cluster} {job.job_id}\n"
        )
        if self.queue is not None:
            self.queue.watch(job.job_id)
        return job

    def submit(self, specs: Sequence[JobSpec]) -> list[JobHandle]:
        return [SubmititHandle(spec, self.submit_one(spec), self) for spec in specs]

    def reattach(self, spec: JobSpec) -> JobHandle | None:
        """The Slurm job still queued or running for ``spec`` from before a restart, if any."""
        record = spec.job_dir / "meta" / f"{spec.kind}_submitit_job.txt"
        if self.queue is None or not record.exists():
            return None  # resubmit; a copy still running elsewhere holds the folder lock, the new one waits
        import submitit

        cluster, job_id = record.read_text().split()
        if cluster != "slurm":
            return None
        self.queue.watch(job_id)
        self.queue.refresh()
        if self.queue.state(job_id) not in ACTIVE:
            return None  # ended (or unknown): a new job resumes from the checkpoints
        job: Any = submitit.SlurmJob(folder=str(spec.job_dir / SUBMITIT_DIR), job_id=job_id)
        return SubmititHandle(spec, job, self)

    def close(self) -> None:
        pass
