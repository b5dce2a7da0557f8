"""The command-line settings of a search (``--bayes_opt_iters`` and friends), read once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmlbench.errors import ConfigError


@dataclass(frozen=True)
class SearchSettings:
    iterations: int                    # --bayes_opt_iters: trials, not counting abandoned ones
    reproductions: int                 # --reproductions: retrainings of the best trial
    sobol_trials: int | None           # --sobol_trials: None = the default for ``iterations``
    trial_executor: str                # --trial_executor: local | local_parallel | slurm
    max_parallel_trials: int | None    # --max_parallel_trials: None = the executor's default
    dataset_root: Path
    trials_per_gpu: int = 1            # --trials_per_gpu: local_parallel trials sharing one GPU

    @classmethod
    def from_args(cls, args: Any) -> "SearchSettings":
        """From the parsed command line (:func:`dmlbench.cli.build_parser`); checks the counts."""
        iterations = args.bayes_opt_iters
        reproductions = int(args.reproductions or 0)
        if iterations is None or iterations < 1:
            raise ConfigError(f"--bayes_opt_iters must be >= 1, got {iterations}")
        trials_per_gpu = getattr(args, "trials_per_gpu", None)
        trials_per_gpu = 1 if trials_per_gpu is None else int(trials_per_gpu)
        if trials_per_gpu < 1 or (trials_per_gpu > 1 and args.trial_executor != "local_parallel"):
            raise ConfigError(f"--trials_per_gpu {trials_per_gpu}: must be >= 1, and above 1 only with "
                              "--trial_executor local_parallel")
        if reproductions < 0:
            raise ConfigError(f"--reproductions must be >= 0, got {reproductions}")
        return cls(iterations=int(iterations), reproductions=reproductions, sobol_trials=args.sobol_trials,
                   trial_executor=args.trial_executor, max_parallel_trials=args.max_parallel_trials,
                   dataset_root=Path(args.dataset_root).resolve(), trials_per_gpu=trials_per_gpu)
