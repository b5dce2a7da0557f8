"""The experiment report: ``meta/report.json`` (machine-readable) and ``meta/report.md``, and
the results table printed at the end of a run."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from typing import Any

from dmlbench.fileio import write_text_atomic
from dmlbench.records.summary import mean_and_sem
from dmlbench.vocabulary import MAIN_METRICS, TRAINED, ordered_statuses


def summarize_test_results(results: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """``{split: {status: {"folds": {scheme: metrics}, "concatenated": metrics}}}`` ->
    the same tree with ``separated: {mean, sem, per_fold}`` in place of ``folds``."""
    summary: dict[str, Any] = {}
    for split, by_status in results.items():
        summary[split] = {}
        for status, result in by_status.items():
            folds = result.get("folds", {})
            metric_names = list(next(iter(folds.values()))) if folds else []
            mean, sem = {}, {}
            for metric in metric_names:
                mean[metric], sem[metric] = mean_and_sem([fold[metric] for fold in folds.values()])
            entry: dict[str, Any] = {"separated": {"mean": mean, "sem": sem, "per_fold": folds}}
            if "concatenated" in result:
                entry["concatenated"] = result["concatenated"]
            summary[split][status] = entry
    return summary


def format_percent(value: float | None) -> str:
    """A 0..1 value as a percentage with two decimals; "-" for a missing value."""
    return "-" if value is None else f"{100 * value:.2f}"


def format_mean_sem(mean: float | None, sem: float | None, n: int | None = None) -> str:
    """``mean ± SEM`` in percent; the mean alone when there is no SEM or fewer than 2 values
    (one model or one fold has no spread to show); "-" for a missing mean."""
    if mean is None:
        return "-"
    if sem is None or (n is not None and n < 2):
        return format_percent(mean)
    return f"{format_percent(mean)} ± {format_percent(sem)}"


def results_table(summary: dict[str, Any], metrics: dict[str, str] = MAIN_METRICS) -> list[list[str]]:
    """Rows [split, status, mode, metric...] with values in percent ("mean ± SEM" for separated,
    the value alone for one model)."""
    rows = [["split", "trained_status", "mode", *metrics.values()]]
    for split, by_status in summary.items():
        for status in ordered_statuses(by_status):
            entry = by_status[status]
            separated = entry["separated"]
            n = len(separated["per_fold"])
            rows.append(
                [
                    split,
                    status,
                    f"separated ({n} model{'s' if n != 1 else ''})",
                    *[format_mean_sem(separated["mean"].get(m), separated["sem"].get(m), n) for m in metrics],
                ]
            )
            if "concatenated" in entry:
                rows.append(
                    [
                        split,
                        status,
                        f"concatenated ({n} model{'s' if n != 1 else ''})",
                        *[format_percent(entry["concatenated"].get(m)) for m in metrics],
                    ]
                )
    return rows


def format_markdown_table(rows: list[list[str]]) -> str:
    header, *body = rows
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def format_text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_report(meta_dir, report: dict[str, Any]) -> None:
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


def finish_experiment(
    experiment: Any, summary: dict[str, Any], training: dict[str, Any], merge: bool = False
) -> dict[str, Any]:
    """Export the records to CSV, plot the validation curves, write the report of ``experiment``
    (a :class:`dmlbench.runner.Experiment`) and print the results table; -> the report dict.
    ``merge``: keep the earlier report's results that this test did not recompute
    (:func:`dmlbench.records.result_merge.merge_results`)."""
    from dmlbench.config.experiment_files import config_hash, saved_split_manifest_hash
    from dmlbench.records.html_render import write_html_report
    from dmlbench.records.plots import plot_validation_curves
    from dmlbench.records.result_merge import merge_results, result_times
    from dmlbench.registry import parse_spec

    experiment.store.export_csv()
    plots = []
    histories = {scheme: info["history"] for scheme, info in training.items() if info.get("history")}
    if histories:
        metric = experiment.settings["eval_metric_for_best_epoch"]
        plot_validation_curves(histories, metric, experiment.meta_dir / "plots" / "validation_curves.png")
        plots.append("validation_curves.png")
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if merge:
        summary, times = merge_results(*_previous_results(experiment.meta_dir), summary, now)
    else:
        times = result_times(summary, now)
    report = {
        "experiment": experiment.experiment_dir.name,
        "created": now,
        "dataset": parse_spec(experiment.settings["dataset"], "dataset")[0],
        "split_manager": parse_spec(experiment.settings["split_manager"], "split_manager")[0],
        "config_sha256": config_hash(experiment.config),
        "split_manifest_sha256": saved_split_manifest_hash(experiment.experiment_dir),
        "results": summary,
        "tested_at": times,
        "training": {
            scheme: {k: v for k, v in info.items() if k != "history"} for scheme, info in training.items()
        },
        "plots": plots,
    }
    add_html_content(experiment, report, training)
    write_report(experiment.meta_dir, report)
    html_path = write_html_report(experiment.experiment_dir, report)
    print()
    print(format_text_table(results_table(summary)))
    print(f"\nreport: {html_path}  (also report.md, report.json, records.db, csv/)")
    return report


def _previous_results(meta_dir) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
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


def add_html_content(experiment: Any, report: dict[str, Any], training: dict[str, Any]) -> None:
    """Training loss curves, retrieval examples of the trained models, versions and phase times."""
    from dmlbench.config.defaults import setting
    from dmlbench.records.environment import phase_times, timed_phase, versions
    from dmlbench.records.plots import plot_training_losses
    from dmlbench.records.retrieval_run import write_retrieval_examples

    rows = experiment.store.training_values()
    if rows:
        plot_training_losses(rows, experiment.meta_dir / "plots" / "training_losses.png")
        report["plots"].append("training_losses.png")
    split = next((s for s, by_status in report["results"].items() if TRAINED in by_status), None)
    queries = int(setting(experiment.settings, "eval_retrieval_examples"))
    if split is not None and queries > 0:
        with timed_phase(experiment.meta_dir, "retrieval examples"):
            report["retrieval"] = write_retrieval_examples(experiment, training, queries=queries, split=split)
    report["versions"] = versions()
    report["phase_times"] = phase_times(experiment.meta_dir)
