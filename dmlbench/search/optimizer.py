"""Ax's side of a search: proposing trials, recording their outcomes, saving its state.

Ax (``ax.Client``, ax-platform 1.3) holds the state of the optimisation. The generation
strategy is Sobol for the first ``sobol_trials`` trials (abandoned or failed ones are replaced),
then Bayesian optimisation (Ax's "fast" modular BoTorch node), both seeded, no centre point.
Each objective value is reported as ``(mean, SEM)`` over the folds, so Ax models the
observation noise instead of trusting every mean exactly.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmlbench.fileio import replace_atomic
from dmlbench.search.messages import quiet_libraries
from dmlbench.search.space import SearchSpace

#: Ax trial statuses as dmlbench reports them.
COMPLETED, RUNNING, FAILED, ABANDONED = "COMPLETED", "RUNNING", "FAILED", "ABANDONED"


def default_sobol_trials(iterations: int) -> int:
    """Quasi-random initial trials: half the budget, at least 1, at most 5 (Ax's default)."""
    return max(1, min(5, iterations // 2))


def quiet_ax() -> None:
    """Ax logs every proposal at INFO level and warns about its own internals; keep WARNING+."""
    for name in ("ax", "botorch", "gpytorch", "linear_operator"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        for handler in logger.handlers:  # Ax's own console handler is set to INFO
            handler.setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("ax."):
            logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"(ax|botorch|gpytorch|linear_operator)(\.|$)")
    quiet_libraries()


@dataclass(frozen=True)
class AxTrial:
    """Ax's record of one trial."""

    index: int
    status: str  # COMPLETED | RUNNING | FAILED | ABANDONED | ...
    parameters: dict[str, Any]
    generation_node: str  # "Sobol" | "MBM" | ...


class AxSearch:
    """An ``ax.Client`` whose state lives in one JSON file, rewritten atomically on every change."""

    def __init__(self, client: Any, state_path: Path) -> None:
        self.client = client
        self.state_path = Path(state_path)

    @classmethod
    def create(
        cls,
        space: SearchSpace,
        metric: str,
        seed: int,
        sobol_trials: int,
        state_path: Path,
        name: str = "dmlbench_search",
    ) -> AxSearch:
        from ax import Client

        quiet_ax()
        client = Client(random_seed=seed)
        client.configure_experiment(parameters=space.ax_configs(), name=name)
        client.configure_optimization(objective=metric)  # maximise
        client.configure_generation_strategy(
            method="fast",
            initialization_budget=sobol_trials,
            initialization_random_seed=seed,
            initialize_with_center=False,
        )
        search = cls(client, state_path)
        search.save()
        return search

    @classmethod
    def load(cls, state_path: Path, seed: int | None = None) -> AxSearch:
        """The client saved in ``state_path``, with its ``seed`` restored: Ax's snapshot keeps the
        generation strategy (Sobol's seed and position) but not the client's ``random_seed``, under
        which every proposal is generated; without it a resumed search proposes other points."""
        from ax import Client

        quiet_ax()
        client = Client.load_from_json_file(str(state_path))
        if seed is not None:
            client._random_seed = seed  # ax 1.3: no public setter; read by get_next_trials
        return cls(client, state_path)

    def save(self) -> None:
        """Write the client's snapshot atomically (temp file, fsync, rename over ``state_path``)."""
        replace_atomic(self.state_path, lambda temp: self.client.save_to_json_file(str(temp)))

    # ------------------------------------------------------------------ reading
    def trials(self) -> list[AxTrial]:
        """Every trial Ax knows, by index."""
        experiment = self.client._experiment  # ax.Client exposes no public trial list
        records = []
        for index, trial in sorted(experiment.trials.items()):
            generator_run = trial.generator_runs[0] if trial.generator_runs else None
            node = getattr(generator_run, "_generation_node_name", None) or "manual"
            records.append(AxTrial(int(index), trial.status.name, dict(trial.arm.parameters), str(node)))
        return records

    # ------------------------------------------------------------------ changing (each saved)
    def propose(self, count: int) -> dict[int, dict[str, Any]]:
        """Up to ``count`` new RUNNING trials; fewer (or none) while Ax waits for data."""
        from ax.exceptions.core import DataRequiredError, OptimizationComplete
        from ax.exceptions.generation_strategy import MaxParallelismReachedException

        if count <= 0:
            return {}
        # proposed from the saved state, as a resumed search does: the live client would warm-start
        # its model fit from the previous one and propose points that differ in the last digits
        self.client = AxSearch.load(self.state_path, self.client._random_seed).client
        try:
            proposed = self.client.get_next_trials(max_trials=count)
        except (DataRequiredError, MaxParallelismReachedException, OptimizationComplete):
            return {}
        self.save()
        return {int(index): dict(parameters) for index, parameters in proposed.items()}

    def complete(self, index: int, metric: str, mean: float, sem: float | None) -> None:
        if not math.isfinite(mean):
            raise ValueError(f"trial {index}: objective {mean!r} is not finite")
        outcome = (float(mean), float(sem)) if sem is not None and math.isfinite(sem) else float(mean)
        self.client.complete_trial(trial_index=index, raw_data={metric: outcome})
        self.save()

    def fail(self, index: int, reason: str) -> None:
        self.client.mark_trial_failed(trial_index=index, failed_reason=reason[:500])
        self.save()

    def abandon(self, index: int) -> None:
        self.client.mark_trial_abandoned(trial_index=index)
        self.save()
