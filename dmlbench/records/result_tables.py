"""Test results as table rows (percent; separated = mean ± SEM over the fold models) and those
rows as Markdown or plain text; shared by the run's report and the search's."""

from __future__ import annotations

from typing import Any

from dmlbench.vocabulary import MAIN_METRICS, ordered_statuses


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
