"""The command-line settings of a search (``--bayes_opt_iters`` and friends), read once."""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmlbench.errors import ConfigError


@dataclass(frozen=True)
class SearchSettings:
    iterations: int  # --bayes_opt_iters: trials, not counting abandoned ones
    reproductions: int  # --reproductions: retrainings of the best trial
    sobol_trials: int | None  # --sobol_trials: None = the default for ``iterations``
    trial_executor: str  # --trial_executor: local | local_parallel | slurm
    max_parallel_trials: int | None  # --max_parallel_trials: None = the executor's default
    dataset_root: Path
    trials_per_gpu: int = 1  # --trials_per_gpu: local_parallel trials sharing one GPU

    @classmethod
    def from_args(cls, args: Any) -> SearchSettings:
        """From the parsed command line (:func:`dmlbench.cli.parse.build_parser`); checks the counts."""
        iterations = args.bayes_opt_iters
        reproductions = int(args.reproductions or 0)
        if iterations is None or iterations < 1:
            raise ConfigError(f"--bayes_opt_iters must be >= 1, got {iterations}")
        trials_per_gpu = getattr(args, "trials_per_gpu", None)
        trials_per_gpu = 1 if trials_per_gpu is None else int(trials_per_gpu)
        if trials_per_gpu < 1 or (trials_per_gpu > 1 and args.trial_executor != "local_parallel"):
            raise ConfigError(
                f"--trials_per_gpu {trials_per_gpu}: must be >= 1, and above 1 only with "
                "--trial_executor local_parallel"
            )
        if reproductions < 0:
            raise ConfigError(f"--reproductions must be >= 0, got {reproductions}")
        executor = args.trial_executor or "local"
        check_executor_flags(executor, args.max_parallel_trials, args.sobol_trials, int(iterations))
        return cls(
            iterations=int(iterations),
            reproductions=reproductions,
            sobol_trials=args.sobol_trials,
            trial_executor=executor,
            max_parallel_trials=args.max_parallel_trials,
            dataset_root=Path(args.dataset_root).resolve(),
            trials_per_gpu=trials_per_gpu,
        )


def check_executor_flags(
    executor: str, max_parallel: int | None, sobol_trials: int | None, iterations: int
) -> None:
    """``--trial_executor``, ``--max_parallel_trials`` and ``--sobol_trials``, checked before any search
    state (folder, lock, Ax state) is written."""
    check_executor_choice(executor, max_parallel)
    if sobol_trials is not None and not 1 <= sobol_trials <= iterations:
        raise ConfigError(
            f"--sobol_trials must be between 1 and --bayes_opt_iters ({iterations}), got {sobol_trials}"
        )
    if executor == "slurm" and importlib.util.find_spec("submitit") is None:
        raise ConfigError("--trial_executor slurm needs the submitit package (pip install submitit)")


def check_executor_choice(executor: str, max_parallel: int | None) -> None:
    """``--trial_executor`` is a known executor and ``--max_parallel_trials`` fits it."""
    from dmlbench.search.executor_common import EXECUTORS  # pulls in submitit

    if executor not in EXECUTORS:
        close = difflib.get_close_matches(executor, EXECUTORS, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"--trial_executor {executor!r} is unknown{hint} (choices: {', '.join(EXECUTORS)})")
    if max_parallel is not None and max_parallel < 1:
        raise ConfigError(f"--max_parallel_trials must be >= 1, got {max_parallel}")
    if executor == "local" and max_parallel not in (None, 1):
        raise ConfigError(
            "--trial_executor local runs one trial at a time; use --trial_executor local_parallel "
            f"for --max_parallel_trials {max_parallel}"
        )
