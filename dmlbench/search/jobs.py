"""The work a search hands to an executor: one job = one folder with its resolved configs.

Kinds of job:

- ``trial``: train every fold of the sub-experiment; the objective is the mean over folds of
  each fold's best validation score (``eval_metric_for_best_epoch``, MAP@R by default), with
  its standard error SEM = s/sqrt(n_folds). Written to ``meta/trial_result.json``.
- ``test``: test the saved fold models and their concatenation on the test split
  (``--evaluate --evaluate_ensemble``). Written to ``meta/test_result.json``.
- ``reproduction``: train every fold and test (an ordinary run). ``meta/test_result.json``.

A job is idempotent and resumable: it holds an exclusive lock on its folder while it runs (a
second copy, e.g. resubmitted after the search driver was killed, waits for the first), returns
the saved result if there is one, and otherwise resumes training from the latest checkpoints.
Run one from a shell with ``python -m dmlbench.search.jobs KIND FOLDER DATASET_ROOT``.

A job may run over several processes (``slurm: {processes: N}``: a submitit job with N tasks, or
``torchrun ... -m dmlbench.search.jobs``): the processes join one process group first, rank 0
alone takes the folder lock, reads a saved result and tells the others, and the job's folds train
data-parallel (:mod:`dmlbench.training.distributed`); only rank 0 writes the result. The error is
written by the first process that raises one of its own (its rank named), not by those that fail
after it in a collective call: a process killed from outside leaves no error, as in one process.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable

from dmlbench.config.experiment_files import load_saved_configs
from dmlbench.errors import ExperimentError
from dmlbench.fileio import write_text_atomic, write_text_from_any_rank
from dmlbench.integrity import read_json_object, remove_stale_temp_files
from dmlbench.search.layout import JOB_ERROR, TEST_RESULT, TRIAL_RESULT
from dmlbench.user_plugins import grant, normalise_paths
from dmlbench.writer_lock import acquire

JOB_KINDS = ("trial", "test", "reproduction")
RESULT_FILES = {"trial": TRIAL_RESULT, "test": TEST_RESULT, "reproduction": TEST_RESULT}
#: Temp files in a job folder at least this old (seconds) whose writer is gone are removed when the
#: job starts. Besides the job, only the search driver writes there (small files, milliseconds),
#: possibly from another machine where its pid cannot be checked.
STALE_TEMP_AGE_S = 60.0


def result_path(kind: str, job_dir: Path) -> Path:
    return Path(job_dir) / RESULT_FILES[kind]


def read_result(kind: str, job_dir: Path) -> dict[str, Any] | None:
    path = result_path(kind, job_dir)
    if not path.exists():
        return None
    return read_json_object(
        path,
        f"delete it and rerun the search's command: the {kind} is then run again "
        "(from its checkpoints where it has them)",
        required=("mean",) if kind == "trial" else ("results",),
    )


def finished_result(kind: str, job_dir: Path) -> dict[str, Any]:
    """The result of a job that succeeded (an ExperimentError if it left none)."""
    result = read_result(kind, job_dir)
    if result is None:
        raise ExperimentError(f"{job_dir}: the {kind} job finished without a result")
    return result


def read_error(job_dir: Path) -> str:
    path = Path(job_dir) / JOB_ERROR
    if not path.exists():
        return "no result and no error recorded"
    lines = [line for line in path.read_text().strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


@contextlib.contextmanager
def folder_lock(job_dir: Path) -> Iterator[None]:
    """The folder's writer lock (:mod:`dmlbench.writer_lock`, the one run.py takes too); blocks
    while another process holds it."""
    lock = acquire(job_dir, create=True, wait=True, what="job")
    try:
        yield
    finally:
        lock.release()


def _strip_history(training: dict[str, Any]) -> dict[str, Any]:
    return {scheme: {k: v for k, v in info.items() if k != "history"} for scheme, info in training.items()}


def train_trial(experiment: Any) -> dict[str, Any]:
    """Train every fold; the objective is the mean best validation score over the folds."""
    from dmlbench.config.experiment_files import save_configs
    from dmlbench.records.summary import mean_and_sem

    metric = experiment.settings["eval_metric_for_best_epoch"]
    folds = experiment.folds
    without_val = [fold.scheme for fold in folds if "val" not in fold.indices]
    if without_val:
        raise ExperimentError(
            f"a search needs a validation split in every fold; {', '.join(without_val)} has none "
            "(use a split manager with validation folds, e.g. MLRCSplitManager)"
        )
    experiment.config_dir.mkdir(parents=True, exist_ok=True)
    save_configs(experiment.config, experiment.config_dir)
    training = {fold.scheme: experiment.train_fold(fold, resume=True) for fold in folds}
    scores = {scheme: float(info["best_score"]) for scheme, info in training.items()}
    bad = [scheme for scheme, score in scores.items() if not math.isfinite(score)]
    if bad:
        raise ExperimentError(f"validation {metric} is not finite for {', '.join(bad)} (training diverged?)")
    mean, sem = mean_and_sem(list(scores.values()))
    experiment.store.export_csv()  # the full report comes with a test (best trial only)
    return {
        "metric": metric,
        "mean": mean,
        "sem": sem if len(scores) > 1 else None,
        "per_fold": scores,
        "training": _strip_history(training),
    }


def join_process_group(job_dir: Path) -> None:
    """Several processes for one job: join their process group on the saved config's device
    (nccl for CUDA, gloo for CPU) before anything else, so that rank 0 can lock for all."""
    from dmlbench.config.defaults import setting
    from dmlbench.config.experiment_files import flatten_config
    from dmlbench.runner import resolve_device
    from dmlbench.training import distributed

    config = load_saved_configs(job_dir)
    distributed.setup(resolve_device(setting(flatten_config(config), "device")))


def _failed_in_collective(error: BaseException) -> bool:
    """The error came out of a torch.distributed call (a collective, the rendezvous) or from rank 0's
    failure: over several processes, the sign that another process of the job failed or died first."""
    from dmlbench.training.distributed import PeerFailure

    if isinstance(error, PeerFailure):
        return True
    frame, innermost = error.__traceback__, None
    while frame is not None:
        innermost, frame = frame.tb_frame.f_code.co_filename, frame.tb_next
    return innermost is not None and f"{os.sep}torch{os.sep}distributed{os.sep}" in innermost


def record_error(job_dir: Path, error: BaseException, first: bool = True) -> None:
    """The traceback being handled -> ``meta/job_error.txt`` (what the search reports). Over several
    processes the first process to fail with its own error writes it (``first``; else the last),
    its rank named; an error that only follows another process's failure or death
    (:func:`_failed_in_collective`) stays in the process's log, so a job whose process was killed is
    retried as in one process."""
    from dmlbench.training import distributed

    if not distributed.launched():
        write_text_atomic(job_dir / JOB_ERROR, traceback.format_exc())
    elif not _failed_in_collective(error):
        world = os.environ.get("WORLD_SIZE", "?")
        write_text_from_any_rank(
            job_dir / JOB_ERROR,
            f"process {distributed.rank()} of {world} failed:\n" + traceback.format_exc(),
            exclusive=first,
        )


def run_job(kind: str, job_dir: str | Path, dataset_root: str | Path) -> dict[str, Any]:
    """Run (or resume, or just read back) the ``kind`` job in ``job_dir``; return its result.

    On failure the traceback goes to ``meta/job_error.txt`` (:func:`record_error`) and the exception
    propagates. Over several processes, rank 0 locks, decides and writes; the others follow it.
    """
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}; kinds: {', '.join(JOB_KINDS)}")
    from dmlbench.training import distributed

    job_dir = Path(job_dir)
    main = distributed.is_main()
    try:
        if distributed.launched():
            join_process_group(job_dir)
    except Exception as error:  # before the lock: an error of an earlier run may still be there
        record_error(job_dir, error, first=False)
        raise
    with folder_lock(job_dir) if main else contextlib.nullcontext():
        if main:  # no other copy of this job runs now: temp files older than a write are its leftovers
            remove_stale_temp_files(job_dir, older_than_s=STALE_TEMP_AGE_S)
        saved = distributed.main_result(lambda: _saved_result(kind, job_dir))
        if saved is not None:
            return saved
        try:
            config = load_saved_configs(job_dir)
            # the search that wrote this job imported its plugins with the user's consent
            grant(normalise_paths((config.get("config_general") or {}).get("plugin_paths")))
            from dmlbench.runner import Experiment  # torch & co: only once there is work

            experiment = Experiment(config, job_dir, Path(dataset_root))
            if kind == "trial":
                result = train_trial(experiment)
            elif kind == "test":
                report = experiment.evaluate(["test"], ensemble=True)
                result = {"results": report["results"], "training": report.get("training", {})}
            else:
                report = experiment.run(resume=True)
                result = {"results": report["results"], "training": report.get("training", {})}
        except Exception as error:
            record_error(job_dir, error)
            raise
        if main:
            write_text_atomic(result_path(kind, job_dir), json.dumps(result, indent=1) + "\n")
            # the leftovers of a killed earlier run, however recent (the driver does not write here
            # while the job runs): a resumed job leaves no temp file
            remove_stale_temp_files(job_dir)
        return result


def _saved_result(kind: str, job_dir: Path) -> dict[str, Any] | None:
    """The saved result; without one, the last run's error is removed (before the other processes
    of the job start, so that the first of them to fail records its error)."""
    saved = read_result(kind, job_dir)
    if saved is None:
        (job_dir / JOB_ERROR).unlink(missing_ok=True)
    return saved


def export_task_environment() -> None:
    """Inside a submitit job with several tasks: torch's variables (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR = the job's first node, MASTER_PORT from the job id) from Slurm's, so that the
    tasks form one process group. Every GPU of the node stays visible; rank r uses cuda:LOCAL_RANK."""
    import submitit

    try:
        tasks = submitit.JobEnvironment().num_tasks
    except Exception:  # not inside a submitit job (a shell, a test)
        return
    if tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


class SearchJob(Checkpointable):
    """A picklable job for submitit; on a Slurm timeout or preemption it is requeued and resumes
    from its checkpoints (``Checkpointable.checkpoint`` resubmits the same call)."""

    def __init__(self, kind: str, job_dir: str, dataset_root: str) -> None:
        self.kind, self.job_dir, self.dataset_root = kind, str(job_dir), str(dataset_root)

    def __call__(self) -> dict[str, Any]:
        from dmlbench.training import distributed

        export_task_environment()
        finished = False
        try:
            result = run_job(self.kind, self.job_dir, self.dataset_root)
            finished = True
            return result
        finally:
            distributed.shutdown(finished)


def main(argv: list[str] | None = None) -> int:
    from dmlbench import warning_display

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 3 or argv[0] not in JOB_KINDS:
        print(
            f"usage: python -m dmlbench.search.jobs {{{','.join(JOB_KINDS)}}} FOLDER DATASET_ROOT",
            file=sys.stderr,
        )
        return 2
    with warning_display.installed():
        try:
            SearchJob(*argv)()
        except Exception as error:  # the traceback is in meta/job_error.txt
            print(f"job failed: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
