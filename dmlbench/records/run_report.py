"""The experiment report: ``meta/report.json`` (machine-readable), ``meta/report.md`` and
``meta/report.html`` (:mod:`dmlbench.records.html_render`), and the results table printed at the
end of a run. The report writer receives plain data: the test's summary, the training outcome
and the retrieval examples already drawn."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmlbench.config.experiment_files import config_hash, flatten_config, saved_split_manifest_hash
from dmlbench.fileio import write_text_atomic
from dmlbench.records.environment import CPU_FILE, phase_times, versions
from dmlbench.records.html_render import write_html_report
from dmlbench.records.plots import plot_training_losses, plot_validation_curves
from dmlbench.records.result_merge import merge_results, result_times
from dmlbench.records.result_tables import (
    format_markdown_table,
    format_percent,
    format_text_table,
    results_table,
)
from dmlbench.records.store import RecordStore
from dmlbench.registry import parse_spec
from dmlbench.vocabulary import TRAINED


@dataclass(frozen=True)
class ReportInputs:
    """Everything a run's report shows, as plain data.

    ``results``/``tested_at``: the (merged) test summary and when each entry was tested
    (:func:`report_results`); ``training``: each fold's outcome (with its validation history);
    ``retrieval``: what :func:`dmlbench.records.retrieval_run.write_retrieval_examples` returned
    (None: no examples drawn)."""

    experiment_dir: Path
    config: dict[str, dict[str, Any]]
    created: str
    results: dict[str, Any]
    tested_at: dict[str, Any]
    training: dict[str, Any]
    retrieval: dict[str, Any] | None = None

    @property
    def meta_dir(self) -> Path:
        return self.experiment_dir / "meta"


def utc_now() -> str:
    """The current UTC time in ISO format, to the second (the report's time stamps)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def report_results(
    meta_dir: Path, summary: dict[str, Any], when: str, merge: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results, tested_at) of the report: ``summary`` stamped ``when``; with ``merge`` the
    existing report.json's results that this test did not recompute are kept
    (:func:`dmlbench.records.result_merge.merge_results`)."""
    if merge:
        return merge_results(*_previous_results(meta_dir), summary, when)
    return summary, result_times(summary, when)


def retrieval_split(results: dict[str, Any]) -> str | None:
    """The split whose retrieval examples the report shows: the first with trained models."""
    return next((split for split, by_status in results.items() if TRAINED in by_status), None)


def finish_experiment(inputs: ReportInputs, store: RecordStore) -> dict[str, Any]:
    """Export ``store`` to CSV, plot the validation and training-loss curves, write report.json,
    report.md and report.html and print the results table; -> the report dict."""
    store.export_csv()
    meta_dir, settings = inputs.meta_dir, flatten_config(inputs.config)
    plots = []
    histories = {scheme: info["history"] for scheme, info in inputs.training.items() if info.get("history")}
    if histories:
        metric = settings["eval_metric_for_best_epoch"]
        plot_validation_curves(histories, metric, meta_dir / "plots" / "validation_curves.png")
        plots.append("validation_curves.png")
    rows = store.training_values()
    if rows:
        plot_training_losses(rows, meta_dir / "plots" / "training_losses.png")
        plots.append("training_losses.png")
    report: dict[str, Any] = {
        "experiment": inputs.experiment_dir.name,
        "created": inputs.created,
        "dataset": parse_spec(settings["dataset"], "dataset")[0],
        "split_manager": parse_spec(settings["split_manager"], "split_manager")[0],
        "config_sha256": config_hash(inputs.config),
        "split_manifest_sha256": saved_split_manifest_hash(inputs.experiment_dir),
        "results": inputs.results,
        "tested_at": inputs.tested_at,
        "training": without_history(inputs.training),
        "plots": plots,
    }
    if inputs.retrieval is not None:
        report["retrieval"] = inputs.retrieval
    report["versions"] = versions()
    report["phase_times"] = phase_times(meta_dir)
    report["phase_cpu_times"] = phase_times(meta_dir, CPU_FILE)
    write_report(meta_dir, report)
    html_path = write_html_report(inputs.experiment_dir, report)
    print()
    print(format_text_table(results_table(inputs.results)))
    print(f"\nreport: {html_path}  (also report.md, report.json, records.db, csv/)")
    return report


def without_history(training: dict[str, Any]) -> dict[str, Any]:
    """Each fold's training outcome without its validation history (the report's ``training``)."""
    return {scheme: {k: v for k, v in info.items() if k != "history"} for scheme, info in training.items()}


def write_report(meta_dir: Path, report: dict[str, Any]) -> None:
    """Write ``report.json`` and ``report.md`` atomically."""
    write_text_atomic(meta_dir / "report.json", json.dumps(report, indent=2, sort_keys=False) + "\n")
    write_text_atomic(meta_dir / "report.md", render_markdown(report))


def render_markdown(report: dict[str, Any]) -> str:
    lines = [f"# {report['experiment']}", ""]
    lines.append(
        f"- data set: {report.get('dataset', '?')}; split manager: {report.get('split_manager', '?')}"
    )
    lines.append(
        f"- config sha256: `{report.get('config_sha256', '?')}`; split manifest sha256: "
        f"`{report.get('split_manifest_sha256', '?')}`"
    )
    lines.append(f"- written: {report.get('created', '?')}")
    lines += ["", "## Test results (percent; separated = mean ± SEM over fold models)", ""]
    lines.append(format_markdown_table(results_table(report["results"])))
    training = report.get("training", {})
    if training:
        lines += [
            "",
            "## Training",
            "",
            "| scheme | best epoch | best val score | epochs | stopped because |",
            "|---|---|---|---|---|",
        ]
        for scheme, info in training.items():
            lines.append(
                f"| {scheme} | {info['best_epoch']} | {format_percent(info['best_score'])} | {info['epochs']} | "
                f"{info['stop_reason']} |"
            )
    for plot in report.get("plots", []):
        lines += ["", f"![{plot}](plots/{plot})"]
    lines += retrieval_markdown(report.get("retrieval"))
    if report.get("versions"):
        lines += ["", "## Versions", "", "| package | version |", "|---|---|"]
        lines += [f"| {name} | {version} |" for name, version in report["versions"].items()]
    return "\n".join(lines) + "\n"


def retrieval_markdown(retrieval: dict[str, Any] | None) -> list[str]:
    """The retrieval examples' figures and worst classes (the figures report.html embeds, here as
    links to ``plots/``)."""
    if not retrieval:
        return []
    lines = ["", "## Retrieval examples", ""]
    if "skipped" in retrieval:
        return [*lines, retrieval["skipped"]]
    lines.append(
        f"{retrieval['split']} split; each row: the query, then its top-{retrieval['top_k']} neighbours, "
        f"green = same class, red = other class; {retrieval['note']}."
    )
    for grid in retrieval["grids"]:
        scores = ", ".join(format_percent(s) for s in grid["query_map_at_r"])
        lines += ["", f"### {grid['name']}", "", f"query MAP@R (%): {scores}", ""]
        lines.append(f"![retrieval examples, {grid['name']}](plots/{grid['plot']})")
    if retrieval.get("worst_classes"):
        lines += ["", "Worst classes (best fold):", "", "| class | MAP@R (%) |", "|---|---|"]
        lines += [f"| {w['label']} | {format_percent(w['map_at_r'])} |" for w in retrieval["worst_classes"]]
    for name in retrieval.get("plots", []):
        lines += ["", f"![{name.removesuffix('.png').replace('_', ' ')}](plots/{name})"]
    return lines


def _previous_results(meta_dir: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(results, tested_at) of the existing ``report.json`` (None, None when there is none or it is
    unreadable)."""
    path = meta_dir / "report.json"
    if not path.exists():
        return None, None
    try:
        report = json.loads(path.read_text())
        return report.get("results"), report.get("tested_at")
    except (ValueError, AttributeError):
        print(
            f"warning: {path} is unreadable; it is rewritten with this test's results only", file=sys.stderr
        )
        return None, None
