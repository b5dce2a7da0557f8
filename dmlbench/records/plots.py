"""Plots a person would rather look at than read: validation curves per fold."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from dmlbench.fileio import atomic_write
from dmlbench.vocabulary import MAIN_METRICS


def metric_label(metric: str) -> str:
    """A metric key as a person reads it: ``mean_average_precision_at_r`` -> ``MAP@R``,
    ``recall_at_4`` -> ``Recall@4``; other keys with spaces for underscores."""
    if metric in MAIN_METRICS:
        return MAIN_METRICS[metric]
    match = re.fullmatch(r"recall_at_(\d+)", metric)
    if match:
        return f"Recall@{match.group(1)}"
    return metric.replace("_", " ")


def plot_validation_curves(histories: dict[str, list[dict[str, Any]]], metric: str, path: Path) -> Path:
    """One line per fold: validation ``metric`` by epoch, best epoch marked."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for scheme, history in histories.items():
        epochs = [row["epoch"] for row in history]
        values = [100 * row[metric] for row in history]
        (line,) = axis.plot(epochs, values, marker="o", markersize=3, label=scheme)
        if values:
            best = max(range(len(values)), key=values.__getitem__)
            axis.scatter([epochs[best]], [values[best]], s=60, facecolors="none", edgecolors=line.get_color())
    axis.set_xlabel("epoch")
    axis.set_ylabel(f"validation {metric_label(metric)} (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return save_figure(figure, path)


def plot_training_losses(rows: list[dict[str, Any]], path: Path) -> Path:
    """Logged training values (means of 10 iterations) by step: one panel per value name,
    one line per fold."""
    names = sorted({row["name"] for row in rows})
    figure, axes = plt.subplots(1, len(names), figsize=(min(14, 4.5 * len(names)), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names):
        for scheme in sorted({row["scheme"] for row in rows}):
            points = [
                (row["step"], row["value"]) for row in rows if row["name"] == name and row["scheme"] == scheme
            ]
            axis.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="." if len(points) < 30 else None,
                label=scheme,
            )
        axis.set_title(name.replace("_", " "), fontsize=9)
        axis.set_xlabel("iteration")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return save_figure(figure, path)


def save_figure(figure: plt.Figure, path: Path) -> Path:
    """Lay out, write as PNG atomically, and close ``figure``."""
    figure.tight_layout()
    with atomic_write(path, "wb") as file:
        figure.savefig(file, format="png", dpi=110)
    plt.close(figure)
    return path
