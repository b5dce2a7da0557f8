"""``meta/report.html``: one self-contained page per experiment (no network; every figure is
embedded as a base64 PNG data URI) built from report.json's content, ``configs/`` and the
figures under ``meta/plots/``. :func:`render_page` is a pure function of the title, the facts
line and the sections; an experiment's sections are here, a search's in
:mod:`dmlbench.search.search_html`."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from dmlbench.fileio import write_text_atomic
from dmlbench.records.result_tables import format_percent, results_table

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


def explanations_section(report: dict[str, Any], plots_dir: Path) -> str:
    """The first retrieval examples with the heatmaps of why each neighbour is near
    (``eval_explanations``; :mod:`dmlbench.attribution`)."""
    explanations = (report.get("retrieval") or {}).get("explanations")
    if not explanations:
        return ""
    title = "Why these neighbours (explanations)"
    if "skipped" in explanations:
        return section(title, f"<p>{esc(explanations['skipped'])}</p>")
    body = (
        "<p class='meta'>The first queries of the best fold's examples and their top-"
        f"{esc(explanations['top_k'])} neighbours. Each query-neighbour cosine similarity is split over "
        "pairs of positions of the trunk's last feature maps (Stylianou, Souvenir, Pless, WACV 2019); each "
        "heatmap shows its image's share: red raises the similarity, blue lowers it. Exact where marked, "
        "else a first-order attribution (docs/explain.md); any query: python -m dmlbench.explain.</p>"
    )
    for item in explanations["items"]:
        query = item["query"]
        rows = [["rank", "index", "class", "cosine", "sum of the pair terms", "exact"]]
        rows += [
            [
                n["rank"],
                n["index"],
                n["label"],
                f"{n['similarity']:.4f}",
                f"{n['contribution_sum']:.4f}",
                "yes" if n["exact"] else "no",
            ]
            for n in item["neighbours"]
        ]
        body += f"<h3>query {esc(query['index'])} (class {esc(query['label'])})</h3>"
        body += image(plots_dir / item["plot"], f"explanation of query {query['index']}") + table(rows)
    return section(title, body)


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
        body += "<h3>Time per phase</h3>" + table(
            phase_rows(report["phase_times"], report.get("phase_cpu_times", {}))
        )
    files = sorted(configs.glob("config_*.yaml")) if configs.is_dir() else []
    if files:
        body += "<h3>Resolved config</h3>" + "".join(
            f"<details><summary>{esc(f.stem)}</summary><pre>{esc(f.read_text())}</pre></details>"
            for f in files
        )
    return section("Provenance", body) if body else ""


def report_facts(report: dict[str, Any]) -> list[str]:
    """The line under the title: when the report was written, the data set and split manager,
    the split manifest's hash."""
    facts = [f"written {report.get('created', '?')}"]
    if report.get("dataset"):
        facts.append(f"data set {report['dataset']}, split manager {report.get('split_manager', '?')}")
    if report.get("split_manifest_sha256"):
        facts.append(f"split manifest sha256 {str(report['split_manifest_sha256'])[:16]}…")
    return facts


def experiment_sections(report: dict[str, Any], plots_dir: Path) -> list[str]:
    """An experiment's sections: test results, training, retrieval examples, explanations."""
    return [
        results_section(report),
        training_section(report, plots_dir),
        retrieval_section(report, plots_dir),
        explanations_section(report, plots_dir),
    ]


def render_page(title: str, facts: list[str], sections: list[str]) -> str:
    """The whole self-contained page: ``title``, the ``facts`` line, then ``sections`` (HTML
    fragments; empty ones are left out). A pure function of its arguments."""
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p class='meta'>{esc('; '.join(facts))}</p>",
        *sections,
        IMAGE_CHECK,
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def write_html_page(experiment_dir: Path, title: str, report: dict[str, Any], sections: list[str]) -> Path:
    """Write ``meta/report.html`` atomically: ``title``, the facts of ``report``, ``sections``, then
    the provenance of ``experiment_dir``; -> its path."""
    path = Path(experiment_dir) / "meta" / "report.html"
    page = render_page(
        title,
        report_facts(report),
        [*sections, provenance_section(Path(experiment_dir), report)],
    )
    write_text_atomic(path, page)
    return path


def write_html_report(experiment_dir: Path, report: dict[str, Any]) -> Path:
    """Write an experiment's ``meta/report.html`` (report.json's content ``report``); -> its path."""
    plots_dir = Path(experiment_dir) / "meta" / "plots"
    return write_html_page(
        experiment_dir, report["experiment"], report, experiment_sections(report, plots_dir)
    )


def phase_rows(wall: dict[str, float], cpu: dict[str, float]) -> list[list[str]]:
    """Rows of the phase table: wall and CPU seconds per phase (CPU blank where not recorded:
    folders of older versions), then the totals."""
    shown = lambda times, key: f"{times[key]:.1f}" if key in times else ""  # noqa: E731
    rows = [["phase", "wall time (s)", "CPU time (s)"]]
    rows += [[name, shown(wall, name), shown(cpu, name)] for name in wall]
    total_cpu = f"{sum(cpu.values()):.1f}" if cpu else ""
    return [*rows, ["total", f"{sum(wall.values()):.1f}", total_cpu]]
