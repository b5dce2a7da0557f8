"""Explain AVSL retrievals: a query, its nearest images by D, and for each pair the levels and
dimensions that contributed most to D, with those dimensions' activation maps overlaid.

    python -m dmlbench.plugins.avsl.explain --experiment_name demo_avsl --query 0
        [--root_experiment_folder logs] [--dataset_root datasets] [--fold 0] [--split test]
        [--top 4] [--dims 2] [--out logs/demo_avsl/meta/explain_query0.png]

The attribution is exact: ``D = sum_{l,k} v^l_k P^l_k delta^l_k``
(:func:`dmlbench.plugins.avsl.functional.pair_attribution`). For each retrieved image the ``--dims``
(level, dimension) pairs with the largest contributions are shown: the activation map M^l_k of
that dimension over the query and over the retrieved image, and the share of D per level.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dmlbench.attribution.draw import write_json
from dmlbench.errors import ConfigError, DMLBenchError
from dmlbench.plugins.avsl import functional as AF
from dmlbench.plugins.avsl.modules import AVSLEmbedder, split_output
from dmlbench.plugins.avsl.plugin import AVSLSimilarity
from dmlbench.user_plugins import add_consent_flags, grant_from_flags


def load(
    experiment_dir: Path, dataset_root: Path, fold_index: int
) -> tuple[Any, Any, dict, AVSLSimilarity, Any]:
    """The experiment, the fold, its best models, the AVSL similarity with its trained state, and
    ``embed(trunk, embedder, dataset, desc) -> (rows, labels)``."""
    from dmlbench.config.experiment_files import load_saved_configs
    from dmlbench.evaluation import protocol
    from dmlbench.runner import Experiment

    experiment = Experiment(load_saved_configs(experiment_dir), experiment_dir, dataset_root)
    folds = experiment.folds
    if not 0 <= fold_index < len(folds):
        raise ConfigError(f"--fold {fold_index}: the experiment has {len(folds)} folds")
    fold = folds[fold_index]
    models, _, similarity = protocol.fold_models(experiment, fold, "trained")

    def embed(*args: Any) -> Any:
        return protocol.embed(experiment.evaluation, experiment.device, *args)

    if not isinstance(similarity, AVSLSimilarity) or not isinstance(models["embedder"], AVSLEmbedder):
        raise ConfigError(
            f"{experiment_dir} is not an AVSL experiment (training_plugins: AVSL, embedder AVSLEmbedder)"
        )
    return experiment, fold, models, similarity, embed


def display_image(tensor: torch.Tensor, normalization: dict[str, Any]) -> np.ndarray:
    """An eval-transformed image [3, H, W] back to RGB in [0, 1] (H, W, 3)."""
    mean = torch.tensor(normalization["mean"]).view(3, 1, 1)
    std = torch.tensor(normalization["std"]).view(3, 1, 1)
    image = tensor * std + mean
    image = image / float(normalization.get("scale", 1))
    if normalization.get("bgr"):
        image = image.flip(0)
    return image.clamp(0, 1).permute(1, 2, 0).numpy()


def explain(
    experiment_dir: Path,
    dataset_root: Path,
    query: int,
    fold_index: int = 0,
    split: str = "test",
    top: int = 4,
    dims: int = 2,
    out: Path | None = None,
) -> Path:
    """Write the explanation PNG of query ``query`` (an index into the split), and a JSON beside
    it (per neighbour: index, label, similarity, distance D, contribution_sum, exact); -> the PNG."""
    from dmlbench.models.factory import input_normalization

    experiment, fold, models, similarity, embed = load(experiment_dir, dataset_root, fold_index)
    if split not in fold.indices:
        raise ConfigError(f"--split {split}: {fold.scheme} has splits {', '.join(fold.indices)}")
    subset = experiment.subset_of(fold.indices[split], models["trunk"])
    if not 0 <= query < len(subset):
        raise ConfigError(
            f"--query {query}: the {split} split has {len(subset)} images (0..{len(subset) - 1})"
        )
    rows, labels = embed(models["trunk"], models["embedder"], subset, f"{fold.scheme} {split}")
    device = experiment.device
    with torch.no_grad():
        scores = similarity(rows[query : query + 1].to(device), rows.to(device))[0].cpu()
    scores[query] = -float("inf")
    neighbours = torch.argsort(scores, descending=True, stable=True)[:top].tolist()

    embedder: AVSLEmbedder = models["embedder"].eval()
    trunk = models["trunk"].eval()
    indices = [query, *neighbours]
    images = torch.stack([subset[i][0] for i in indices])
    with torch.no_grad():
        maps = embedder.activation_maps(list(trunk(images.to(device))))
    levels, dim = embedder.num_levels, embedder.dim
    e, c = split_output(rows[indices].to(device), levels, dim)
    links, a, b = similarity.tensors_on(device)
    contributions = AF.pair_attribution(
        [t[:1].expand(top, -1) for t in e],
        [t[1:] for t in e],
        [t[:1].expand(top, -1) for t in c],
        [t[1:] for t in c],
        links,
        a,
        b,
        similarity.gamma,
        similarity.p,
    ).cpu()
    normalization = input_normalization(trunk)
    pictures = [display_image(image, normalization) for image in images]
    out = out or experiment_dir / "meta" / f"explain_{split}_query{query}.png"
    draw(
        out,
        pictures,
        maps,
        contributions,
        [int(labels[i]) for i in indices],
        -scores[neighbours],
        dims,
        title=f"{experiment_dir.name} {fold.scheme} {split}: query {query}",
    )
    write_json(
        out.with_suffix(".json"),
        {
            "experiment": experiment_dir.name,
            "split": split,
            "models": f"fold {fold.scheme}",
            "query": {"index": query, "label": int(labels[query])},
            "neighbours": [
                {
                    "rank": rank,
                    "index": index,
                    "label": int(labels[index]),
                    "similarity": float(scores[index]),
                    "distance": float(-scores[index]),
                    "contribution_sum": float(contributions[rank - 1].double().sum()),
                    "exact": True,
                }
                for rank, index in enumerate(neighbours, start=1)
            ],
            "png": out.name,
            "note": "AVSL ranks by similarity = -D, D its graph distance; contribution_sum: the sum over "
            "levels and dimensions of v P delta, which is D (docs/methods/avsl.md)",
        },
    )
    return out


def overlay(axis: Any, picture: np.ndarray, heat: torch.Tensor, caption: str, colour: str) -> None:
    """``picture`` with ``heat`` [h, w] upsampled, min-max scaled and drawn over it."""
    height, width = picture.shape[:2]
    heat = F.interpolate(
        heat[None, None].float(), size=(height, width), mode="bilinear", align_corners=False
    )[0, 0]
    heat = (heat - heat.min()) / (heat.max() - heat.min() + 1e-12)
    axis.imshow(picture)
    axis.imshow(heat.numpy(), cmap="jet", alpha=0.45)
    axis.set_title(caption, fontsize=7, color=colour)
    axis.set_xticks([])
    axis.set_yticks([])


def draw(
    out: Path,
    pictures: list[np.ndarray],
    maps: list[torch.Tensor],
    contributions: torch.Tensor,
    labels: list[int],
    distances: torch.Tensor,
    dims: int,
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top, levels, dim = contributions.shape
    columns = 3 + 2 * dims
    figure, axes = plt.subplots(top, columns, figsize=(1.9 * columns, 2.0 * top + 0.4), squeeze=False)
    for row in range(top):
        total = float(contributions[row].sum())
        same = labels[row + 1] == labels[0]
        colour = "green" if same else "red"
        for column, picture, caption, edge in (
            (0, pictures[0], f"query, class {labels[0]}", "black"),
            (
                1,
                pictures[row + 1],
                f"#{row + 1} class {labels[row + 1]}\nD = {float(distances[row]):.3f}",
                colour,
            ),
        ):
            axes[row, column].imshow(picture)
            axes[row, column].set_title(caption, fontsize=7, color=edge)
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            for spine in axes[row, column].spines.values():
                spine.set_edgecolor(edge)
                spine.set_linewidth(3)
        flat = contributions[row].flatten()
        for slot, position in enumerate(torch.argsort(flat, descending=True)[:dims].tolist()):
            level, k = divmod(position, dim)
            share = 100 * float(flat[position]) / max(total, 1e-12)
            caption = f"L{level + 1} dim {k}: {share:.0f}% of D"
            overlay(
                axes[row, 2 + 2 * slot], pictures[0], maps[level][0, k].cpu(), "query " + caption, "black"
            )
            overlay(
                axes[row, 3 + 2 * slot],
                pictures[row + 1],
                maps[level][row + 1, k].cpu(),
                f"#{row + 1} " + caption,
                "black",
            )
        per_level = contributions[row].sum(dim=1) / max(total, 1e-12)
        bars = axes[row, -1]
        bars.barh([f"L{l + 1}" for l in range(levels)], (100 * per_level).tolist(), color="tab:blue")
        bars.set_xlim(0, 100)
        bars.set_title("share of D per level (%)", fontsize=7)
        bars.tick_params(labelsize=7)
    figure.suptitle(
        f"{title}: nearest by D (green: same class); per pair the (level, dimension) terms "
        "contributing most to D, their activation maps overlaid",
        fontsize=9,
    )
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dmlbench.plugins.avsl.explain", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--experiment_name", required=True)
    parser.add_argument("--root_experiment_folder", default="logs")
    parser.add_argument("--dataset_root", default="datasets")
    parser.add_argument("--query", type=int, required=True, help="index of the query image within the split")
    parser.add_argument("--fold", type=int, default=0, help="which fold's best model (0-based)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--top", type=int, default=4, help="retrieved images shown")
    parser.add_argument(
        "--dims", type=int, default=2, help="(level, dimension) pairs shown per retrieved image"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="PNG path (default: <experiment>/meta/explain_...)"
    )
    add_consent_flags(parser)
    args = parser.parse_args(argv)
    grant_from_flags(args)  # code the folder's config imports runs only with these flags
    try:
        if args.top < 1 or args.dims < 1:
            raise ConfigError("--top and --dims must be >= 1")
        experiment_dir = Path(args.root_experiment_folder) / args.experiment_name
        if not (experiment_dir / "configs").is_dir():
            raise ConfigError(f"{experiment_dir} is not an experiment folder (no configs/)")
        out = explain(
            experiment_dir,
            Path(args.dataset_root),
            args.query,
            args.fold,
            args.split,
            args.top,
            args.dims,
            args.out,
        )
    except DMLBenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
