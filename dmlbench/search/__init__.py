"""Bayesian hyperparameter search (Ax) over ``~BAYESIAN~``-marked config keys, with trial
executors (in-process, local processes, submitit/Slurm). See :mod:`dmlbench.search.driver`.

Importing this package is cheap: Ax is imported only when a search runs, so that job processes
(:mod:`dmlbench.search.jobs`) start fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def run_search(
    args: Any, config: dict[str, dict[str, Any]], experiment_dir: Path, argv: Sequence[str]
) -> int:
    """Run or continue the search in ``experiment_dir`` (see :func:`dmlbench.search.driver.run_search`)."""
    from dmlbench.search.driver import run_search as _run_search

    return _run_search(args, config, experiment_dir, argv)


__all__ = ["run_search"]
