"""The rehearsal's Markdown table from its JSON rows (bench/rehearsal/run.py)."""

from __future__ import annotations

from typing import Any

MIB = 1024 * 1024


def _phase(phases: dict[str, float], prefix: str) -> float:
    return sum(seconds for name, seconds in phases.items() if name.startswith(prefix))


def with_cpu(wall: dict[str, float], cpu: dict[str, float], prefix: str) -> str:
    """Wall seconds of the phases named ``prefix...``, then ``/ CPU seconds`` where recorded."""
    if not any(name.startswith(prefix) for name in wall):
        return ""
    shown = f"{_phase(wall, prefix):,.0f}"
    return shown + (f" / {_phase(cpu, prefix):,.0f}" if any(n.startswith(prefix) for n in cpu) else "")


def row_cells(row: dict[str, Any]) -> list[str]:
    phases, cpu = row.get("phases_s", {}), row.get("phase_cpu_s", {})
    disk = row.get("disk_bytes", {})
    folds = sum(1 for name in phases if name.startswith("train "))
    status = "ok" if row["exit_code"] == 0 else f"exit {row['exit_code']}: {' '.join(row.get('error', []))}"
    number = lambda value, digits=0: "" if value is None else f"{value:,.{digits}f}"  # noqa: E731
    return [
        row["dataset"],
        row["method"],
        row["config"],
        row["trunk"],
        str(row["iterations"]),
        number(row.get("load_average_before"), 1),
        number(row.get("wall_s")),
        number(row.get("cpu_s")),
        number(row.get("startup_and_rest_s")),
        f"{with_cpu(phases, cpu, 'train ')} ({folds})",
        with_cpu(phases, cpu, "test"),
        with_cpu(phases, cpu, "retrieval"),
        number(row.get("peak_rss_mib")),
        number(disk.get("checkpoints", 0) / MIB, 1),
        number(disk.get("records_db", 0) / MIB, 2),
        number(disk.get("tensorboard", 0) / MIB, 2),
        number(disk.get("report_html", 0) / MIB, 2),
        number(disk.get("total", 0) / MIB, 1),
        *estimate_cells(row),
        status,
    ]


def estimate_cells(row: dict[str, Any]) -> list[str]:
    """The ``--estimate`` projection made just before the run, and the measured wall over it."""
    estimate = row.get("estimate") or {}
    total = estimate.get("total_s")
    if total is None:
        return ["", ""] if not estimate.get("error") else [f"failed: {estimate['error']}", ""]
    ratio = f"{row['wall_s'] / total:.2f}" if row.get("wall_s") else ""
    return [f"{total:,.0f}", ratio]


HEADER = [
    "data set",
    "method",
    "exp_config",
    "trunk",
    "iterations",
    "load avg before",
    "wall s",
    "CPU s",
    "start-up + rest s",
    "train+val s wall / CPU (folds)",
    "test s wall / CPU",
    "report figures s wall / CPU",
    "peak RSS MiB",
    "checkpoints MiB",
    "records.db MiB",
    "TensorBoard MiB",
    "report.html MiB",
    "folder MiB",
    "--estimate s",
    "measured / estimated",
    "status",
]


def markdown_table(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    lines = [
        "# Rehearsal at published sizes",
        "",
        f"Machine: {machine}. Produced by `bench/rehearsal/run.py` on trees from "
        "`bench/rehearsal/generate.py` (published image and class counts).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    for row in results["runs"]:
        lines.append("| " + " | ".join(row_cells(row)) + " |")
    notes = results.get("notes", [])
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"
