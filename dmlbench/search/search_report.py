"""The search's outputs under ``<experiment>/meta/``: report.{json,md}, best_parameters.yaml,
csv/trials.csv and plots/search_trace.png."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmlbench.config.yaml_io import dump_yaml
from dmlbench.fileio import write_text_atomic
from dmlbench.records.environment import versions
from dmlbench.records.plots import metric_label, save_figure
from dmlbench.records.result_tables import (
    format_markdown_table,
    format_mean_sem,
    results_table,
)
from dmlbench.search.layout import SearchLayout
from dmlbench.search.messages import generator_label
from dmlbench.search.optimizer import ABANDONED, COMPLETED, FAILED, RUNNING
from dmlbench.search.results import (
    TrialRow,
    aggregate_runs,
    best_so_far,
    objective_spread,
    reproduction_table,
)
from dmlbench.search.search_html import write_search_html


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def trials_csv(rows: Sequence[TrialRow], parameter_names: Sequence[str]) -> str:
    """One line per trial: index, status, Ax's generation node and its readable name (the report's),
    objective mean and SEM, parameters."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "trial",
            "status",
            "generation_node",
            "generator",
            "objective_mean",
            "objective_sem",
            *parameter_names,
            "folder",
            "error",
        ]
    )
    for row in sorted(rows, key=lambda r: r.index):
        writer.writerow(
            [
                row.index,
                row.status,
                row.generation_node,
                generator_label(row.generation_node),
                _cell(row.mean),
                _cell(row.sem),
                *[_cell(row.parameters.get(name)) for name in parameter_names],
                row.folder,
                row.error or "",
            ]
        )
    return buffer.getvalue()


def override_flags(parameters: dict[str, Any]) -> str:
    """Command-line flags that set each parameter (a plain key overrides its search marker)."""
    tokens = []
    for name, value in parameters.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = repr(value)
        else:
            text = json.dumps(value)
        tokens += [f"--{name}", text]
    return shlex.join(tokens)


def plot_search_trace(rows: Sequence[TrialRow], metric: str, path: Path) -> Path:
    """Objective (± SEM) of each completed trial by index, coloured by generator, with the
    best-so-far curve; failed or abandoned trials marked at the bottom."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axis = plt.subplots(figsize=(7, 4))
    observed = [row for row in rows if row.observed]
    for label in sorted({generator_label(row.generation_node) for row in observed}):
        group = [row for row in observed if generator_label(row.generation_node) == label]
        axis.errorbar(
            [r.index for r in group],
            [100 * r.observed_mean for r in group],
            yerr=[100 * (r.sem or 0.0) for r in group],
            fmt="o",
            capsize=3,
            label=label,
        )
    trace = best_so_far(rows)
    if trace:
        last = max(row.index for row in rows)
        xs = [i for i, _ in trace] + [last + 0.5]
        ys = [100 * v for _, v in trace] + [100 * trace[-1][1]]
        axis.step(xs, ys, where="post", color="black", linewidth=1.2, label="best so far")
    lost = [row for row in rows if row.status in ("FAILED", "ABANDONED")]
    if lost and observed:
        bottom = min(100 * r.observed_mean for r in observed)
        axis.scatter(
            [r.index for r in lost],
            [bottom] * len(lost),
            marker="x",
            color="grey",
            label="failed / abandoned",
        )
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("trial")
    axis.set_ylabel(f"validation {metric_label(metric)} (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return save_figure(figure, path)


def render_markdown(report: dict[str, Any]) -> str:
    best = report.get("best_trial")
    counts = report["trial_counts"]
    lines = [f"# {report['experiment']} (Bayesian optimisation)", ""]
    lines.append(
        f"- objective: mean validation `{report['objective']}` over folds (Ax gets mean and SEM); "
        f"{report['iterations']} iterations requested, first {report['sobol_trials']} Sobol"
    )
    lines.append("- trials: " + ", ".join(f"{count} {status.lower()}" for status, count in counts.items()))
    lines.append(f"- written: {report['created']}")
    if best:
        lines += [
            "",
            "## Best trial",
            "",
            f"Trial {best['index']} (`{best['folder']}`, {generator_label(best['generation_node'])}): "
            f"{format_mean_sem(best['mean'], best['sem'])} ({objective_spread(best['sem'])}).",
            "",
            "| parameter | value |",
            "|---|---|",
        ]
        lines += [f"| {name} | {value!r} |" for name, value in best["parameters"].items()]
        lines += ["", "Best parameters: `best_parameters.yaml`."]
    if report.get("best_trial_test"):
        lines += [
            "",
            "## Best trial on the test split (percent; separated = mean ± SEM over fold models)",
            "",
            format_markdown_table(results_table(report["best_trial_test"])),
        ]
    reproductions = report.get("reproductions") or {}
    if reproductions.get("count"):
        n = reproductions["count"]
        if n < 2:  # one value per cell: no interval to show
            lines += [
                "",
                "## Reproduction of the best trial (1 retraining, a different seed)",
                "",
                "Percent; separated = its mean over its fold models, concatenated = its fold models' "
                "embeddings concatenated. One reproduction gives no interval: use --reproductions 2 or more.",
                "",
                format_markdown_table(reproduction_table(reproductions["results"], interval=False)),
            ]
        else:
            lines += [
                "",
                f"## Reproductions of the best trial ({n} retrainings, different seeds)",
                "",
                f"Percent, mean over reproductions [{int(100 * reproductions['level'])}% Student-t confidence "
                "interval]; separated = each reproduction's mean over its fold models, concatenated = its "
                "fold models' embeddings concatenated.",
                "",
                format_markdown_table(reproduction_table(reproductions["results"])),
            ]
    lines += [
        "",
        "## Trials",
        "",
        "| trial | status | generator | objective (%) | folder |",
        "|---|---|---|---|---|",
    ]
    for row in report["trials"]:
        objective = format_mean_sem(row["mean"], row["sem"])
        lines.append(
            f"| {row['index']} | {row['status']} | {generator_label(row['generation_node'])} | {objective} | "
            f"{row['folder']} |"
        )
    lines += ["", "All trials with their parameters: `csv/trials.csv`."]
    for plot in report.get("plots", []):
        lines += ["", f"![{plot}](plots/{plot})"]
    return "\n".join(lines) + "\n"


def write_search_outputs(
    meta_dir: Path,
    report: dict[str, Any],
    rows: Sequence[TrialRow],
    parameter_names: Sequence[str],
    metric: str,
) -> None:
    """Every file of the search report, each written atomically."""
    write_text_atomic(meta_dir / "csv" / "trials.csv", trials_csv(rows, parameter_names))
    if any(row.observed for row in rows):
        plot_search_trace(rows, metric, meta_dir / "plots" / "search_trace.png")
        report["plots"] = ["search_trace.png"]
    best = report.get("best_trial")
    if best:
        write_text_atomic(
            meta_dir / "best_parameters.yaml",
            dump_yaml(
                {
                    "trial": best["index"],
                    "folder": best["folder"],
                    "objective": metric,
                    "mean": best["mean"],
                    "sem": best["sem"],
                    "parameters": best["parameters"],
                    "command_line_overrides": override_flags(best["parameters"]),
                }
            ),
        )
    report["versions"] = versions()
    write_text_atomic(meta_dir / "report.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(meta_dir / "report.md", render_markdown(report))
    write_search_html(meta_dir.parent, report)


def build_search_report(
    layout: SearchLayout,
    metric: str,
    iterations: int,
    counts: dict[str, int],
    rows: Sequence[TrialRow],
    best: TrialRow,
    best_test: dict[str, Any],
    runs: list[dict[str, Any]],
    level: float,
) -> dict[str, Any]:
    """The search report's content: trial counts, the best trial and its test, the reproductions
    (means with ``level`` Student-t intervals) and every trial."""
    return {
        "experiment": layout.experiment_dir.name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "objective": metric,
        "iterations": iterations,
        "sobol_trials": json.loads(layout.settings_path.read_text())["sobol_trials"],
        "trial_counts": {status: counts.get(status, 0) for status in (COMPLETED, FAILED, ABANDONED, RUNNING)},
        "best_trial": {
            "index": best.index,
            "folder": best.folder,
            "generation_node": best.generation_node,
            "mean": best.mean,
            "sem": best.sem,
            "per_fold": best.per_fold,
            "parameters": best.parameters,
        },
        "best_trial_test": best_test,
        "reproductions": {
            "count": len(runs),
            "level": level,
            "folders": [
                str(layout.reproduction_dir(i).relative_to(layout.experiment_dir)) for i in range(len(runs))
            ],
            "results": aggregate_runs(runs, level) if runs else {},
        },
        "trials": [
            {
                "index": r.index,
                "status": r.status,
                "generation_node": r.generation_node,
                "mean": r.mean,
                "sem": r.sem,
                "folder": r.folder,
                "parameters": r.parameters,
            }
            for r in rows
        ],
        "plots": [],
    }
