"""Reading a finished search: the trials table, the best trial, and reproduction statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dmlbench.records.result_tables import format_percent
from dmlbench.records.summary import confidence_interval, mean_and_sem
from dmlbench.vocabulary import MAIN_METRICS, RESULT_MODES, ordered_statuses


@dataclass
class TrialRow:
    """One row of the trials table."""

    index: int
    status: str
    generation_node: str
    parameters: dict[str, Any]
    folder: str
    mean: float | None = None
    sem: float | None = None
    per_fold: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def observed(self) -> bool:
        return self.status == "COMPLETED" and self.mean is not None and math.isfinite(self.mean)

    @property
    def observed_mean(self) -> float:
        """The mean of an observed trial."""
        if self.mean is None:
            raise ValueError(f"trial {self.index} has no mean")
        return self.mean


def best_trial(rows: Sequence[TrialRow]) -> TrialRow | None:
    """The completed trial with the highest observed mean; ties go to the lowest index."""
    observed = [row for row in rows if row.observed]
    if not observed:
        return None
    return min(observed, key=lambda row: (-row.observed_mean, row.index))


def best_so_far(rows: Sequence[TrialRow]) -> list[tuple[int, float]]:
    """(trial index, best observed mean up to and including it) for each completed trial."""
    trace, best = [], -math.inf
    for row in sorted(rows, key=lambda r: r.index):
        if row.observed:
            best = max(best, row.observed_mean)
            trace.append((row.index, best))
    return trace


def run_values(summary: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, float]]:
    """One test summary (``{split: {status: {separated: {mean}, concatenated}}}``) ->
    ``{(split, status, mode): {metric: value}}``; separated = mean over the fold models."""
    values: dict[tuple[str, str, str], dict[str, float]] = {}
    for split, by_status in summary.items():
        for status, entry in by_status.items():
            values[(split, status, "separated")] = dict(entry["separated"]["mean"])
            if "concatenated" in entry:
                values[(split, status, "concatenated")] = dict(entry["concatenated"])
    return values


def aggregate_runs(summaries: Sequence[dict[str, Any]], level: float = 0.95) -> dict[str, Any]:
    """Mean and Student-t confidence interval over runs (reproductions) of each number::

        {split: {status: {mode: {metric: {mean, sem, ci_low, ci_high, n, values}}}}}

    ci = mean +- t_{(1+level)/2, n-1} * s/sqrt(n); with one run the interval is [mean, mean].
    A number missing from some run is aggregated over the runs that have it.
    """
    collected: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for summary in summaries:
        for key, metrics in run_values(summary).items():
            for metric, value in metrics.items():
                collected.setdefault(key, {}).setdefault(metric, []).append(float(value))
    tree: dict[str, Any] = {}
    for (split, status, mode), runs_of_metric in collected.items():
        node = tree.setdefault(split, {}).setdefault(status, {}).setdefault(mode, {})
        for metric, runs in runs_of_metric.items():
            mean, sem = mean_and_sem(runs)
            low, high = confidence_interval(runs, level)
            node[metric] = {
                "mean": mean,
                "sem": sem,
                "ci_low": low,
                "ci_high": high,
                "n": len(runs),
                "values": runs,
            }
    return tree


def reproduction_table(
    aggregate: dict[str, Any], metrics: dict[str, str] = MAIN_METRICS, interval: bool = True
) -> list[list[str]]:
    """Rows [split, status, mode, metric...] with "mean [CI low, CI high]" in percent (the mean
    alone with ``interval=False``)."""
    rows = [["split", "trained_status", "mode", *metrics.values()]]
    for split, by_status in aggregate.items():
        for status in ordered_statuses(by_status):
            for mode in RESULT_MODES:
                entry = by_status[status].get(mode)
                if not entry:
                    continue
                cells = []
                for metric in metrics:
                    stat = entry.get(metric)
                    bounds = (
                        f" [{format_percent(stat['ci_low'])}, {format_percent(stat['ci_high'])}]"
                        if stat and interval
                        else ""
                    )
                    cells.append("-" if stat is None else f"{format_percent(stat['mean'])}{bounds}")
                rows.append([split, status, mode, *cells])
    return rows


def objective_spread(sem: float | None) -> str:
    """What a trial's objective is: a mean ± SEM over folds, or one fold's value (no SEM)."""
    return "mean ± SEM over folds" if sem is not None else "one fold, no SEM"
