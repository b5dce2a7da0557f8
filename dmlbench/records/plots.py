"""Plots a person would rather look at than read: validation curves per fold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dmlbench.fileio import atomic_write  # noqa: E402


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
    axis.set_ylabel(f"validation {metric} (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return save_figure(figure, path)


def save_figure(figure: plt.Figure, path: Path) -> Path:
    """Lay out, write as PNG atomically, and close ``figure``."""
    figure.tight_layout()
    with atomic_write(path, "wb") as file:
        figure.savefig(file, format="png", dpi=110)
    plt.close(figure)
    return path
