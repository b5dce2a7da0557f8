"""``meta/report.html``: one self-contained page per experiment (no network; every figure is
embedded as a base64 PNG data URI) built from report.json's content, ``configs/`` and the
figures under ``meta/plots/``. The same renderer serves single experiments and searches."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from dmlbench.fileio import write_text_atomic
from dmlbench.records.run_report import format_mean_sem, format_percent, results_table

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1050px;padding:0 16px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}
table{border-collapse:collapse;font-size:.9em;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f0f0f0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eee;margin:6px 0}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:.85em}
details{margin:4px 0}summary{cursor:pointer}.meta{color:#555;font-size:.9em}
"""

#: Marks images the browser could not load (checked by the tests in a real browser).
IMAGE_CHECK = (
    "<script>window.addEventListener('load',function(){var b=0;for(var i of document.images)"
    "{if(!i.complete||i.naturalWidth===0)b++;}document.body.setAttribute('data-broken-images',b);});"
    "</script>"
)


def esc(value: Any) -> str:
    return html.escape(str(value))


def table(rows: list[list[Any]]) -> str:
    """An HTML table; the first row is the header; cells that start with a digit align right."""
    header, *body = rows
    out = ["<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in header) + "</tr>"]
    for row in body:
        cells = "".join(
            f"<td class='n'>{esc(c)}</td>" if str(c)[:1].isdigit() else f"<td>{esc(c)}</td>" for c in row
        )
        out.append(f"<tr>{cells}</tr>")
    return "\n".join(out) + "</table>"


def image(path: Path, alt: str) -> str:
    """An <img> with the PNG embedded as a data URI; a note when the file is missing."""
    if not path.exists():
        return f"<p class='meta'>(figure {esc(path.name)} was not written)</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{data}'>"


def section(title: str, body: str) -> str:
    return f"<h2>{esc(title)}</h2>\n{body}\n"


def results_section(report: dict[str, Any]) -> str:
    if report.get("results"):
        return section(
            "Test results (percent; separated = mean ± SEM over fold models)",
            table(results_table(report["results"])),
        )
    return ""


def training_section(report: dict[str, Any], plots_dir: Path) -> str:
    training = report.get("training") or {}
    body = ""
    if training:
        rows = [["fold", "best epoch", "best val score (%)", "epochs", "stopped because"]]
        rows += [
            [
                scheme,
                info.get("best_epoch"),
                format_percent(info.get("best_score")),
                info.get("epochs"),
                info.get("stop_reason"),
            ]
            for scheme, info in training.items()
        ]
        body += table(rows)
    for name, alt in (
        ("validation_curves.png", "validation curves per fold"),
        ("training_losses.png", "training loss curves"),
    ):
        if name in report.get("plots", []):
            body += f"<h3>{esc(alt)}</h3>" + image(plots_dir / name, alt)
    return section("Training", body) if body else ""


def retrieval_section(report: dict[str, Any], plots_dir: Path) -> str:
    retrieval = report.get("retrieval")
    if not retrieval:
        return ""
    if "skipped" in retrieval:
        return section("Retrieval examples", f"<p>{esc(retrieval['skipped'])}</p>")
    body = (
        f"<p class='meta'>{esc(retrieval['split'])} split; each row: the query (dark frame), then its top-"
        f"{esc(retrieval['top_k'])} neighbours, green = same class, red = other class. Half of the queries "
        f"are the worst by MAP@R, the rest evenly spaced; {esc(retrieval['note'])}.</p>"
    )
    for grid in retrieval["grids"]:
        scores = ", ".join(format_percent(s) for s in grid["query_map_at_r"])
        body += f"<h3>{esc(grid['name'])}</h3><p class='meta'>query MAP@R (%): {esc(scores)}</p>"
        body += image(plots_dir / grid["plot"], f"retrieval examples, {grid['name']}")
    worst = [["class", "MAP@R (%)"]] + [
        [w["label"], format_percent(w["map_at_r"])] for w in retrieval["worst_classes"]
    ]
    body += "<h3>Worst classes (best fold)</h3>" + table(worst)
    for name in retrieval.get("plots", []):
        body += image(plots_dir / name, name.removesuffix(".png").replace("_", " "))
    return section("Retrieval examples", body)


def search_sections(report: dict[str, Any], plots_dir: Path) -> str:
    """Best trial, its test, the reproductions (95% intervals), the trials table, the trace."""
    from dmlbench.search.messages import generator_label
    from dmlbench.search.search_report import objective_spread, reproduction_table

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
    from dmlbench.search.messages import generator_label

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


def provenance_section(experiment_dir: Path, report: dict[str, Any]) -> str:
    """Exact command, versions, wall time per phase, resolved config (collapsible)."""
    configs = experiment_dir / "configs"
    body = ""
    command = configs / "command_line.txt"
    if command.exists():
        body += "<h3>Command</h3><pre>" + esc(command.read_text().strip()) + "</pre>"
    if report.get("versions"):
        body += "<h3>Versions</h3>" + table([["package", "version"], *report["versions"].items()])
    if report.get("phase_times"):
        rows = [["phase", "wall time (s)"]] + [[k, f"{v:.1f}"] for k, v in report["phase_times"].items()]
        rows.append(["total", f"{sum(report['phase_times'].values()):.1f}"])
        body += "<h3>Wall time per phase</h3>" + table(rows)
    files = sorted(configs.glob("config_*.yaml")) if configs.is_dir() else []
    if files:
        body += "<h3>Resolved config</h3>" + "".join(
            f"<details><summary>{esc(f.stem)}</summary><pre>{esc(f.read_text())}</pre></details>"
            for f in files
        )
    return section("Provenance", body) if body else ""


def render_html(report: dict[str, Any], experiment_dir: Path) -> str:
    """The whole page for report.json's content ``report`` of ``experiment_dir``."""
    plots_dir = experiment_dir / "meta" / "plots"
    title = report["experiment"] + (" (hyperparameter search)" if "trials" in report else "")
    facts = [f"written {report.get('created', '?')}"]
    if report.get("dataset"):
        facts.append(f"data set {report['dataset']}, split manager {report.get('split_manager', '?')}")
    if report.get("split_manifest_sha256"):
        facts.append(f"split manifest sha256 {str(report['split_manifest_sha256'])[:16]}…")
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p class='meta'>{esc('; '.join(facts))}</p>",
    ]
    if "trials" in report:
        parts.append(search_sections(report, plots_dir))
    else:
        parts += [
            results_section(report),
            training_section(report, plots_dir),
            retrieval_section(report, plots_dir),
        ]
    parts += [provenance_section(experiment_dir, report), IMAGE_CHECK, "</body></html>"]
    return "\n".join(p for p in parts if p)


def write_html_report(experiment_dir: Path, report: dict[str, Any]) -> Path:
    """Write ``meta/report.html`` atomically; -> its path."""
    path = Path(experiment_dir) / "meta" / "report.html"
    write_text_atomic(path, render_html(report, Path(experiment_dir)))
    return path
