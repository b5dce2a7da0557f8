"""One search folder at work: Ax's trials run as jobs, resumed after a restart, the best trial
tested and retrained (:class:`Search`); :mod:`dmlbench.search.driver` opens it and writes the report.

A trial's objective is the mean validation score over its folds, reported to Ax with its SEM; the
search stops when ``MAX_CONSECUTIVE_FAILURES`` trials in a row fail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmlbench.config.experiment_files import load_saved_configs, record_command_line, save_configs
from dmlbench.errors import ExperimentError
from dmlbench.fileio import write_text_atomic
from dmlbench.integrity import read_json_object
from dmlbench.search.executor_common import JobHandle, JobSpec, wait_any
from dmlbench.search.jobs import finished_result, read_error, read_result
from dmlbench.search.layout import REPRODUCTION_INFO, TRIAL_PARAMETERS, SearchLayout
from dmlbench.search.messages import generator_label
from dmlbench.search.optimizer import ABANDONED, COMPLETED, FAILED, RUNNING, AxSearch
from dmlbench.search.results import TrialRow, best_trial
from dmlbench.search.space import SearchSpace

#: The search stops when this many trials in a row fail (a broken config would fail them all).
MAX_CONSECUTIVE_FAILURES = 3


def _jsonable(value: Any) -> Any:
    """Plain JSON data (numpy scalars become Python numbers), so saved and live values compare."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def log(message: str) -> None:
    """One progress line of the search, ``[search] <message>``."""
    print(f"[search] {message}", flush=True)


def format_values(values: dict[str, Any]) -> str:
    """``alpha=0.1, margin=0.2``: a trial's values by their last key part (floats to 4 digits)."""
    return ", ".join(
        f"{name.rsplit('.', 1)[-1]}={value:.4g}"
        if isinstance(value, float)
        else f"{name.rsplit('.', 1)[-1]}={value!r}"
        for name, value in values.items()
    )


class Search:
    """One search folder: its space, Ax state, executor and jobs."""

    def __init__(
        self,
        layout: SearchLayout,
        config: dict[str, dict[str, Any]],
        space: SearchSpace,
        ax: AxSearch,
        executor: Any,
        dataset_root: Path,
        metric: str,
    ) -> None:
        self.layout, self.config, self.space, self.ax = layout, config, space, ax
        self.executor, self.dataset_root, self.metric = executor, dataset_root, metric
        self.pending: dict[int, JobHandle] = {}
        self.queue: list[JobSpec] = []
        self.consecutive_failures = 0

    # ------------------------------------------------------------------ trial folders
    def trial_spec(self, index: int) -> JobSpec:
        return JobSpec("trial", self.layout.trial_dir(index), self.dataset_root)

    def saved_parameters(self, index: int) -> dict[str, Any] | None:
        path = self.layout.trial_dir(index) / TRIAL_PARAMETERS
        if not path.exists():
            return None
        return read_json_object(
            path,
            "delete the trial's folder and rerun the search's command (the trial is run again)",
            required=("ax_parameters",),
        )["ax_parameters"]

    def prepare_trial(self, index: int, ax_parameters: dict[str, Any]) -> JobSpec:
        """Write the trial's folder: resolved configs holding the concrete values."""
        folder = self.layout.trial_dir(index)
        ax_parameters = _jsonable(ax_parameters)
        if folder.exists() and self.saved_parameters(index) not in (None, ax_parameters):
            moved = self.layout.set_aside(folder, self.layout.stale_dir())
            log(f"{folder.name} held other parameters; moved to {moved}")
        values = self.space.decode(ax_parameters)
        save_configs(self.space.fill(values), folder / "configs")
        write_text_atomic(
            folder / TRIAL_PARAMETERS,
            json.dumps({"trial": index, "ax_parameters": ax_parameters, "values": values}, indent=1) + "\n",
        )
        record_command_line(
            folder, None, note=f"trial {index} of the search in {self.layout.experiment_dir}", append=False
        )
        return self.trial_spec(index)

    # ------------------------------------------------------------------ resume
    def reconcile(self) -> None:
        """Bring Ax's record and the trial folders into agreement after a restart."""
        known = set()
        for trial in self.ax.trials():
            known.add(trial.index)
            if trial.status != RUNNING:
                continue
            saved = self.saved_parameters(trial.index)
            if saved is not None and saved != _jsonable(trial.parameters):
                log(
                    f"trial {trial.index}: its folder holds other parameters than Ax's record; abandoned, "
                    "a new trial replaces it"
                )
                self.ax.abandon(trial.index)
                self.layout.set_aside(self.layout.trial_dir(trial.index), self.layout.stale_dir())
                continue
            spec = (
                self.prepare_trial(trial.index, trial.parameters)
                if saved is None
                else self.trial_spec(trial.index)
            )
            if read_result("trial", spec.job_dir) is not None:
                log(f"trial {trial.index}: finished before the restart; recording its result")
                self.record(trial.index, None)
                continue
            handle = self.executor.reattach(spec)
            if handle is not None:
                log(f"trial {trial.index}: still running as a job; waiting for it")
                self.pending[trial.index] = handle
            else:
                log(f"trial {trial.index}: was running; resuming it")
                self.queue.append(spec)
        if self.layout.trials_dir.exists():
            for folder in sorted(self.layout.trials_dir.glob("trial_*")):
                suffix = folder.name[len("trial_") :]
                if folder.is_dir() and suffix.isdigit() and int(suffix) not in known:
                    moved = self.layout.set_aside(folder, self.layout.stale_dir())
                    log(f"{folder.name} is not a trial Ax knows; moved to {moved}")

    # ------------------------------------------------------------------ running
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for trial in self.ax.trials():
            counts[trial.status] = counts.get(trial.status, 0) + 1
        return counts

    def record(self, index: int, failure: str | None) -> None:
        """Tell Ax how trial ``index`` ended (its result is read from its folder)."""
        folder = self.layout.trial_dir(index)
        result = read_result("trial", folder) if failure is None else None
        if result is None:
            failure = failure or read_error(folder)
            self.ax.fail(index, failure)
            self.consecutive_failures += 1
            log(f"trial {index} FAILED: {failure} (traceback: {folder / 'meta' / 'job_error.txt'})")
            if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                raise ExperimentError(
                    f"{self.consecutive_failures} trials in a row failed, the last ({folder}) with: {failure}; "
                    "fix the config and rerun the same command to continue the search"
                )
            return
        self.ax.complete(index, self.metric, result["mean"], result["sem"])
        self.consecutive_failures = 0
        best = best_trial(self.rows())
        sem = "" if result["sem"] is None else f" ± {100 * result['sem']:.2f}"
        log(
            f"trial {index} done: {self.metric} {100 * result['mean']:.2f}{sem}"
            + (f" (best so far: trial {best.index}, {100 * best.observed_mean:.2f})" if best else "")
        )

    def _start(self, specs: Sequence[JobSpec]) -> None:
        for spec, handle in zip(specs, self.executor.submit(specs)):
            self.pending[int(spec.job_dir.name.split("_")[-1])] = handle

    def run_trials(self, iterations: int) -> None:
        """Propose and run trials until ``iterations`` of them (not counting abandoned ones) exist
        and have finished."""
        while True:
            counts = self.counts()
            existing = sum(count for status, count in counts.items() if status != ABANDONED)
            free = self.executor.capacity - len(self.pending)
            if free > 0 and self.queue:
                batch, self.queue = self.queue[:free], self.queue[free:]
                self._start(batch)
                free -= len(batch)
            proposed: dict[int, dict[str, Any]] = {}
            if free > 0 and not self.queue and existing < iterations:
                proposed = self.ax.propose(min(free, iterations - existing))
                specs = []
                for index, parameters in proposed.items():
                    trial = next(t for t in self.ax.trials() if t.index == index)
                    log(
                        f"trial {index} ({generator_label(trial.generation_node)}): {format_values(self.space.decode(parameters))}"
                    )
                    specs.append(self.prepare_trial(index, parameters))
                if specs:
                    self._start(specs)
            if not self.pending and not self.queue:
                if existing >= iterations:
                    return
                if not proposed:
                    log(f"Ax proposes no further trial (search space exhausted?); stopping at {existing}")
                    return
                continue
            for handle in wait_any(list(self.pending.values())):
                index = next(i for i, h in self.pending.items() if h is handle)
                del self.pending[index]
                self.record(index, handle.failure())

    def run_jobs(self, specs: Sequence[JobSpec]) -> dict[Path, str | None]:
        """Run jobs (tests, reproductions) to the end, at most ``capacity`` at once; -> failures."""
        failures: dict[Path, str | None] = {}
        queue = [spec for spec in specs if read_result(spec.kind, spec.job_dir) is None]
        for spec in specs:
            if spec not in queue:
                failures[spec.job_dir] = None
        running: list[JobHandle] = []
        while queue or running:
            free = self.executor.capacity - len(running)
            if free > 0 and queue:
                batch, queue = queue[:free], queue[free:]
                attached = {spec: self.executor.reattach(spec) for spec in batch}
                running += [handle for handle in attached.values() if handle is not None]
                fresh = [spec for spec, handle in attached.items() if handle is None]
                if fresh:  # one submission
                    running += self.executor.submit(fresh)
                continue
            for handle in wait_any(running):
                running.remove(handle)
                failures[handle.spec.job_dir] = handle.failure()
        return failures

    # ------------------------------------------------------------------ after the search
    def rows(self) -> list[TrialRow]:
        rows = []
        for trial in self.ax.trials():
            folder = self.layout.trial_dir(trial.index)
            result = read_result("trial", folder) if trial.status == COMPLETED else None
            rows.append(
                TrialRow(
                    index=trial.index,
                    status=trial.status,
                    generation_node=trial.generation_node,
                    parameters=self.space.decode(trial.parameters),
                    folder=str(folder.relative_to(self.layout.experiment_dir)) if folder.exists() else "",
                    mean=result["mean"] if result else None,
                    sem=result["sem"] if result else None,
                    per_fold=result["per_fold"] if result else {},
                    error=read_error(folder) if trial.status == FAILED and folder.exists() else None,
                )
            )
        return rows

    def test_best(self, best: TrialRow) -> dict[str, Any]:
        spec = JobSpec("test", self.layout.trial_dir(best.index), self.dataset_root)
        log(f"testing the best trial ({best.index}) and its ensemble on the test split")
        failure = self.run_jobs([spec])[spec.job_dir]
        if failure:
            raise ExperimentError(f"testing the best trial failed ({spec.job_dir}): {failure}")
        return finished_result("test", spec.job_dir)["results"]

    def prepare_reproductions(self, best: TrialRow, count: int, base_seed: int) -> list[JobSpec]:
        """Folders for ``count`` retrainings of ``best``; a set made for another best trial is
        moved to ``reproductions_of_trial_NNNN``."""
        from dmlbench.training.seeding import derive_seed

        first = self.layout.reproduction_dir(0) / REPRODUCTION_INFO
        info = (
            read_json_object(
                first,
                f"delete {first.parent.parent} and rerun the search's command (the reproductions run again)",
                required=("best_trial",),
            )
            if first.exists()
            else None
        )
        if info is not None and info["best_trial"] != best.index:
            old = info["best_trial"]
            archive = self.layout.experiment_dir / f"reproductions_of_trial_{old:04d}"
            moved = self.layout.move_to_free_name(self.layout.reproductions_dir, archive)
            log(f"the best trial changed ({old} -> {best.index}); earlier reproductions moved to {moved}")
        best_config = load_saved_configs(self.layout.trial_dir(best.index))
        specs = []
        for index in range(count):
            folder = self.layout.reproduction_dir(index)
            if not (folder / REPRODUCTION_INFO).exists():
                seed = derive_seed(base_seed, "reproduction", index)
                config = json.loads(json.dumps(best_config))
                config.setdefault("config_general", {})["seed"] = seed
                save_configs(config, folder / "configs")
                record_command_line(
                    folder,
                    None,
                    note=f"reproduction {index} of trial {best.index} of the search "
                    f"in {self.layout.experiment_dir}",
                    append=False,
                )
                write_text_atomic(
                    folder / REPRODUCTION_INFO,
                    json.dumps({"best_trial": best.index, "reproduction": index, "seed": seed}, indent=1)
                    + "\n",
                )
            specs.append(JobSpec("reproduction", folder, self.dataset_root))
        return specs

    def reproduce(self, best: TrialRow, count: int, base_seed: int) -> list[dict[str, Any]]:
        specs = self.prepare_reproductions(best, count, base_seed)
        todo = [spec for spec in specs if read_result("reproduction", spec.job_dir) is None]
        if todo:
            log(f"retraining the best trial: {len(todo)} of {count} reproduction(s) to run")
        failures = self.run_jobs(specs)
        failed = {folder: message for folder, message in failures.items() if message}
        if failed:
            folder, message = next(iter(failed.items()))
            raise ExperimentError(
                f"{len(failed)} reproduction(s) failed, e.g. {folder}: {message}; rerun the same "
                "command to retry them"
            )
        return [finished_result("reproduction", spec.job_dir)["results"] for spec in specs]
