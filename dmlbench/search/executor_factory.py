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

from typing import Any

from dmlbench.search.executors import InProcessExecutor, ProcessExecutor, check_one_gpu_device
from dmlbench.search.settings import check_executor_choice


def make_executor(name: str, settings: dict[str, Any], capacity: int | None, trials_per_gpu: int = 1) -> Any:
    """The executor ``--trial_executor name`` asks for (name and capacity checked first)."""
    check_executor_choice(name, capacity)
    if name == "local_parallel":
        check_one_gpu_device(settings.get("device"))
        return ProcessExecutor(capacity, trials_per_gpu)
    if name == "slurm":
        from dmlbench.search.slurm_executor import SubmititExecutor

        return SubmititExecutor(settings.get("slurm") or {}, capacity)
    return InProcessExecutor()
