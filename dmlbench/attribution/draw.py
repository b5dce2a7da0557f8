"""The explanation figure (PNG, matplotlib) and its JSON: one row per neighbour, the query and the
neighbour with their heatmaps overlaid (red: positions that raise the similarity, blue: lower it;
one colour scale per row, so the two panels of a pair compare)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dmlbench.attribution.pairs import PairExplanation
from dmlbench.fileio import atomic_write

SAME_CLASS, OTHER_CLASS = "#00aa00", "#dc0000"


@dataclass(frozen=True)
class Neighbour:
    """A ranked neighbour: its index in the split, label and similarity as the report ranks it."""

    index: int
    label: int
    similarity: float


def display_image(tensor: torch.Tensor, normalization: dict[str, Any]) -> np.ndarray:
    """An eval-transformed image [3, H, W] back to RGB in [0, 1], (H, W, 3): ``x * std + mean``,
    divided by ``scale`` (255 for BN-Inception) and BGR flipped to RGB where the trunk wants BGR."""
    mean = torch.tensor(normalization["mean"], dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(normalization["std"], dtype=torch.float32).view(3, 1, 1)
    image = (tensor.detach().cpu().float() * std + mean) / float(normalization.get("scale", 1))
    if normalization.get("bgr"):
        image = image.flip(0)
    return image.clamp(0, 1).permute(1, 2, 0).numpy()


def upsampled(heat: torch.Tensor, height: int, width: int) -> np.ndarray:
    """A heatmap [h, w] resized to the image (bilinear, as the feature grid covers the image)."""
    return F.interpolate(
        heat[None, None].double(), size=(height, width), mode="bilinear", align_corners=False
    )[0, 0].numpy()


def _panel(axis: Any, picture: np.ndarray, heat: torch.Tensor, scale: float, caption: str, edge: str) -> Any:
    """The picture with ``heat`` over it: red > 0, blue < 0, as opaque as the value is large
    (a position that adds nothing leaves the picture visible)."""
    from matplotlib import cm, colors

    values = upsampled(heat, *picture.shape[:2])
    norm = colors.Normalize(vmin=-scale, vmax=scale)
    overlay = cm.RdBu_r(norm(values))
    overlay[..., 3] = 0.8 * np.clip(np.abs(values) / scale, 0, 1)
    axis.imshow(picture)
    axis.imshow(overlay)
    axis.set_title(caption, fontsize=7, color=edge)
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_edgecolor(edge)
        spine.set_linewidth(3)
    return cm.ScalarMappable(norm=norm, cmap="RdBu_r")


def draw_explanation(
    out: Path,
    pictures: Sequence[np.ndarray],
    query_label: int,
    neighbours: Sequence[Neighbour],
    explanations: Sequence[PairExplanation],
    title: str,
    dpi: int = 100,
    palette: bool = False,
) -> Path:
    """The figure: per neighbour row, the query's and the neighbour's heatmap of that pair;
    ``palette``: 256 colours (dithered), about a quarter of the bytes, for pages that embed it."""
    from dmlbench.records.plots import plt

    rows = len(neighbours)
    figure, axes = plt.subplots(
        rows, 3, figsize=(4.8, 2.3 * rows + 0.7), squeeze=False, gridspec_kw={"width_ratios": [1, 1, 0.06]}
    )
    for row, (neighbour, explanation) in enumerate(zip(neighbours, explanations)):
        scale = max(
            float(explanation.query_map.abs().max()), float(explanation.neighbour_map.abs().max()), 1e-12
        )
        colour = SAME_CLASS if neighbour.label == query_label else OTHER_CLASS
        exact = "exact" if explanation.exact else "approx."
        _panel(
            axes[row, 0], pictures[0], explanation.query_map, scale, f"query, class {query_label}", "black"
        )
        shown = _panel(
            axes[row, 1],
            pictures[row + 1],
            explanation.neighbour_map,
            scale,
            f"#{row + 1} ({neighbour.index}), class {neighbour.label}\n"
            f"cos {neighbour.similarity:.3f} = sum {explanation.contribution_sum:.3f} ({exact})",
            colour,
        )
        bar = figure.colorbar(shown, cax=axes[row, 2])
        bar.ax.tick_params(labelsize=6)
    figure.suptitle(title, fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    picture: Image.Image = Image.open(buffer)
    if palette:
        picture = picture.convert("RGB").quantize(
            256, Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG
        )
    with atomic_write(out, "wb") as file:
        picture.save(file, format="PNG", optimize=True)
    return out


def explanation_record(
    query: int, query_label: int, neighbours: Sequence[Neighbour], explanations: Sequence[PairExplanation]
) -> dict[str, Any]:
    """The JSON content: per neighbour its index (in the split), label, similarity (as ranked),
    contribution_sum (float64 decomposition) and exact."""
    return {
        "query": {"index": int(query), "label": int(query_label)},
        "neighbours": [
            {
                "rank": rank,
                "index": int(neighbour.index),
                "label": int(neighbour.label),
                "similarity": float(neighbour.similarity),
                "contribution_sum": explanation.contribution_sum,
                "exact": bool(explanation.exact),
            }
            for rank, (neighbour, explanation) in enumerate(zip(neighbours, explanations), start=1)
        ],
    }


def write_json(path: Path, content: dict[str, Any]) -> Path:
    with atomic_write(path, "w") as file:
        json.dump(content, file, indent=2)
        file.write("\n")
    return path
