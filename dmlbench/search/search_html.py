"""The sections of a search's ``meta/report.html``: the best trial, its test, the reproductions
(Student-t intervals), the trials table and the search trace; the page itself is
:func:`dmlbench.records.html_render.write_html_page`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dmlbench.records.html_render import esc, image, section, table, write_html_page
from dmlbench.records.result_tables import format_mean_sem, results_table
from dmlbench.search.messages import generator_label
from dmlbench.search.results import objective_spread, reproduction_table


def search_sections(report: dict[str, Any], plots_dir: Path) -> str:
    """Best trial, its test, the reproductions (95% intervals), the trials table, the trace."""
    body = ""
    best = report.get("best_trial")
    if best:
        rows = [["parameter", "value"]] + [[k, repr(v)] for k, v in best["parameters"].items()]
        body += section(
            "Best trial",
            f"<p>Trial {esc(best['index'])} ({esc(best['folder'])}, "
            f"{esc(generator_label(best['generation_node']))}): {format_mean_sem(best['mean'], best['sem'])} "
            f"(validation {esc(report['objective'])}, {objective_spread(best['sem'])})</p>" + table(rows),
        )
    if report.get("best_trial_test"):
        body += section(
            "Best trial on the test split (percent; mean ± SEM over fold models)",
            table(results_table(report["best_trial_test"])),
        )
    reproductions = report.get("reproductions") or {}
    count = reproductions.get("count")
    if count == 1:  # one value per cell: no interval to show
        body += section(
            "Reproduction (1 retraining; percent; no interval from one reproduction)",
            table(reproduction_table(reproductions["results"], interval=False)),
        )
    elif count:
        level = int(100 * reproductions["level"])
        body += section(
            f"Reproductions ({count}; mean [{level}% Student-t interval], percent)",
            table(reproduction_table(reproductions["results"])),
        )
    body += section("Trials", trials_table(report["trials"]))
    if "search_trace.png" in report.get("plots", []):
        body += section("Search trace", image(plots_dir / "search_trace.png", "search trace"))
    return body


def trials_table(trials: list[dict[str, Any]]) -> str:
    """One row per trial; parameters by their last name component when that is unambiguous."""
    names = sorted({name for trial in trials for name in trial["parameters"]})
    short = [name.split(".")[-1] for name in names]
    headers = short if len(set(short)) == len(short) else names
    rows = [["trial", "status", "generator", "objective (%)", *headers]]
    for trial in trials:
        objective = format_mean_sem(trial["mean"], trial["sem"])
        values = [trial["parameters"].get(name, "") for name in names]
        rows.append(
            [
                trial["index"],
                trial["status"],
                generator_label(trial["generation_node"]),
                objective,
                *[f"{v:.4g}" if isinstance(v, float) else v for v in values],
            ]
        )
    return table(rows)


def write_search_html(experiment_dir: Path, report: dict[str, Any]) -> Path:
    """Write the search's ``meta/report.html`` (report.json's content ``report``); -> its path."""
    plots_dir = Path(experiment_dir) / "meta" / "plots"
    title = f"{report['experiment']} (hyperparameter search)"
    return write_html_page(experiment_dir, title, report, [search_sections(report, plots_dir)])
