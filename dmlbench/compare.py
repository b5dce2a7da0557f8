"""``python -m dmlbench.compare logs/cub_* logs/car_* [--published] [--format markdown|csv|latex]``:
one table of many experiments in the MLRC paper's layout -- rows = methods, columns = data set x
{concatenated, separated} x {P@1, RP, MAP@R}, percent; ± SEM over fold models, or [95% interval]
over reproductions for a search with reproductions. Unfinished experiments and experiments on
another split of their data set are listed below the table, never mixed into it."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmlbench.records.comparison import (
    METRICS,
    MODES,
    Cell,
    ExperimentResult,
    published_results,
    read_experiments,
)

FORMATS = ("markdown", "csv", "latex")


def format_cell(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    if cell.interval is not None:
        return f"{cell.mean:.2f} [{cell.interval[0]:.2f}, {cell.interval[1]:.2f}]"
    if cell.sem is not None:
        return f"{cell.mean:.2f} ± {cell.sem:.2f}"
    return f"{cell.mean:.2f}"


def build_table(results: list[ExperimentResult], published: dict[str, Any] | None) -> list[list[str]]:
    """Header row + one row per method (experiments of one method on several data sets share a
    row; a second experiment of the same method and data set gets its own row); with
    ``published``, the paper's numbers in a row under each method it reports."""
    usable = [r for r in results if r.problem is None]
    datasets = list(dict.fromkeys(r.dataset or "?" for r in usable))
    rows: dict[str, dict[str, ExperimentResult]] = {}
    for result in usable:
        label = result.method or result.name
        if (result.dataset or "?") in rows.get(label, {}):
            label = f"{label} ({result.name})"
        rows.setdefault(label, {})[result.dataset or "?"] = result
    header = [
        "method",
        "experiments",
        *[f"{d} {mode} {short}" for d in datasets for mode in MODES for short in METRICS.values()],
    ]
    table = [header]
    for label, by_dataset in rows.items():
        names = ", ".join(r.name for r in by_dataset.values())
        cells = [
            format_cell(by_dataset[d].cells.get((mode, metric))) if d in by_dataset else "-"
            for d in datasets
            for mode in MODES
            for metric in METRICS
        ]
        table.append([label, names, *cells])
        key = next((r.loss_key for r in by_dataset.values() if r.loss_key), None)
        entry = (published or {}).get("results", {}).get(key) if published else None
        if entry and any(d in entry for d in datasets):
            paper = [
                f"{entry[d][mode][i]:.2f}" if d in entry else "-"
                for d in datasets
                for mode in MODES
                for i in range(len(METRICS))
            ]
            table.append([f"{label}, published", "MLRC (ECCV 2020)", *paper])
    return table


def notes(results: list[ExperimentResult], published: dict[str, Any] | None) -> list[str]:
    lines = [f"{r.name}: {r.spread}" for r in results if r.problem is None and r.spread != "SEM over folds"]
    lines += [f"NOT IN THE TABLE: {r.folder}: {r.problem}" for r in results if r.problem]
    if published:
        lines.append(f"published numbers: {published['source']}")
    return lines


def render(table: list[list[str]], note_lines: list[str], fmt: str) -> str:
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows(table)
        for line in note_lines:
            writer.writerow([f"# {line}"])
        return buffer.getvalue()
    if fmt == "latex":

        def tex(text: str) -> str:
            return (
                text.replace("\\", "\\textbackslash{}")
                .replace("&", "\\&")
                .replace("%", "\\%")
                .replace("_", "\\_")
                .replace("#", "\\#")
                .replace("±", "$\\pm$")
            )

        lines = [
            "\\begin{tabular}{ll" + "r" * (len(table[0]) - 2) + "}",
            "\\hline",
            " & ".join(tex(c) for c in table[0]) + " \\\\",
            "\\hline",
        ]
        lines += [" & ".join(tex(c) for c in row) + " \\\\" for row in table[1:]]
        lines += ["\\hline", "\\end{tabular}"] + [f"% {tex(line)}" for line in note_lines]
        return "\n".join(lines) + "\n"
    header, *body = table
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    lines += [""] + [f"- {line}" for line in note_lines] if note_lines else []
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dmlbench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="+", help="experiment folders (plain runs or searches)")
    parser.add_argument(
        "--published", action="store_true", help="add MLRC's published numbers under each method"
    )
    parser.add_argument("--format", choices=FORMATS, default="markdown")
    parser.add_argument("--split", default="test", help="split whose trained results are compared")
    parser.add_argument("--output", help="write to this file instead of standard output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    missing = [f for f in args.experiments if not Path(f).is_dir()]
    if missing:
        print(f"error: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    results = read_experiments([Path(f) for f in args.experiments], args.split)
    published = published_results() if args.published else None
    text = render(build_table(results, published), notes(results, published), args.format)
    if args.output:
        Path(args.output).write_text(text)
        print(f"comparison: {args.output}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
