"""``python -m dmlbench.explain``: why a trained experiment retrieves what it retrieves.

    python -m dmlbench.explain --experiment_name demo --query 0 [--root_experiment_folder logs]
        [--fold F | --ensemble] [--split test] [--top 4] [--out PATH] [--dataset_root datasets]

The query (an index into the split, as in report.html) and its ``--top`` nearest neighbours,
ranked as the report ranks them (cosine similarity of the embeddings, self excluded, ties to the
lower index; by default the report's best fold, ``--ensemble`` the concatenated fold models).
Each query-neighbour similarity is decomposed over pairs of positions of the trunk's last
feature maps (:mod:`dmlbench.attribution.decompose`); the figure overlays each pair's two marginal
heatmaps on the images, and a JSON beside it lists per neighbour its index, label,
``similarity``, ``contribution_sum`` and ``exact``. AVSL experiments go to the AVSL explanation
(:mod:`dmlbench.plugins.avsl.explain`).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmlbench.attribution.draw import (
    Neighbour,
    display_image,
    draw_explanation,
    explanation_record,
    write_json,
)
from dmlbench.attribution.pairs import explain_pairs
from dmlbench.attribution.ranking import rank_query
from dmlbench.errors import ConfigError, DMLBenchError, ExperimentError
from dmlbench.user_plugins import add_consent_flags, grant_from_flags

if TYPE_CHECKING:
    from dmlbench.data.folds import FoldData
    from dmlbench.runner import Experiment

AVSL_EMBEDDER = "AVSLEmbedder"


def experiment_folder(root: Path, name: str) -> Path:
    """``root/name`` if it is a trained experiment folder, else a one-line error."""
    from dmlbench.config.experiment_files import is_saved_experiment, is_search_folder

    folder = root / name
    if is_search_folder(folder):
        raise ExperimentError(
            f"{folder} is a search; explain its best trial or a reproduction, e.g. "
            f"--root_experiment_folder {folder / 'trials'} --experiment_name trial_0000"
        )
    if not is_saved_experiment(folder):
        known = sorted(p.name for p in root.iterdir() if is_saved_experiment(p)) if root.is_dir() else []
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = (
            f" (did you mean {', '.join(close)}?)"
            if close
            else f" (experiments there: {', '.join(known[:8])})"
        )
        raise ExperimentError(
            f"--experiment_name {name}: no experiment folder {folder}" + (hint if known else "")
        )
    return folder


def chosen_folds(experiment: Experiment, fold: int | None, ensemble: bool) -> tuple[list[FoldData], str]:
    """The folds whose models rank (one, or all for ``--ensemble``) and how the figure names them."""
    from dmlbench.records.retrieval_run import best_scheme
    from dmlbench.training import checkpoint
    from dmlbench.training.fold import training_summary

    folds = experiment.folds
    if ensemble:
        return folds, f"concatenated ({len(folds)} folds)"
    if fold is not None:
        if not 0 <= fold < len(folds):
            raise ConfigError(f"--fold {fold}: the experiment has {len(folds)} folds (0..{len(folds) - 1})")
        return [folds[fold]], f"fold {folds[fold].scheme}"
    training = {}
    for candidate in folds:
        latest = experiment.checkpoint_dir(candidate) / "latest.pt"
        if latest.exists():
            training[candidate.scheme] = training_summary(checkpoint.load(latest)["state"])
    scheme = best_scheme(training, [candidate.scheme for candidate in folds])
    return [next(f for f in folds if f.scheme == scheme)], f"best fold ({scheme})"


def explain_experiment(
    experiment_dir: Path,
    dataset_root: Path,
    query: int,
    fold: int | None = None,
    ensemble: bool = False,
    split: str = "test",
    top: int = 4,
    out: Path | None = None,
) -> tuple[Path, Path]:
    """Write the explanation PNG and JSON of ``query``; -> their paths."""
    import numpy as np

    from dmlbench.config.experiment_files import load_saved_configs
    from dmlbench.evaluation import protocol
    from dmlbench.evaluation.ensemble import concatenate_normalized
    from dmlbench.models.factory import input_normalization
    from dmlbench.records.retrieval_run import example_samples
    from dmlbench.runner import Experiment

    experiment = Experiment(load_saved_configs(experiment_dir), experiment_dir, dataset_root)
    folds, shown = chosen_folds(experiment, fold, ensemble)
    samples = []
    for current in folds:  # the split's samples: compared to itself, or queries then gallery
        found = example_samples(current.indices, split)
        if found is None:
            raise ConfigError(f"--split {split}: {current.scheme} has splits {', '.join(current.indices)}")
        samples.append(found)
    indices, gallery_start = samples[0]
    if any(not np.array_equal(other, indices) for other, _ in samples):
        raise ConfigError(f"--ensemble: the folds' {split} splits differ; explain one --fold")
    queries = len(indices) if gallery_start is None else gallery_start
    models, embedded, labels = [], [], None
    for current in folds:
        fold_models, _, similarity = protocol.fold_models(experiment, current, "trained")
        if similarity is not None:
            raise ConfigError(
                f"cannot explain: {current.scheme} ranks with the plugin similarity "
                f"{getattr(similarity, '__name__', type(similarity).__name__)}, not the cosine"
            )
        subset = experiment.subset_of(indices, fold_models["trunk"])
        if not 0 <= query < queries:
            raise ConfigError(
                f"--query {query}: the {split} split has {queries} "
                f"{'images' if gallery_start is None else 'query images'} (0..{queries - 1})"
            )
        rows, labels = protocol.embed(
            experiment.evaluation,
            experiment.device,
            fold_models["trunk"],
            fold_models["embedder"],
            subset,
            f"{current.scheme} {split}",
            False,
        )
        models.append(fold_models)
        embedded.append(rows.cpu())
    assert labels is not None
    ranked = embedded[0] if len(embedded) == 1 else concatenate_normalized(embedded)
    order, scores = rank_query(ranked, query, top, gallery_start)
    label_list = [int(v) for v in labels.cpu()]
    neighbours = [Neighbour(i, label_list[i], s) for i, s in zip(order, scores)]
    images = [subset[i][0] for i in [query, *order]]
    explanations = explain_pairs(models, images)
    normalization = input_normalization(models[0]["trunk"])
    suffix = "_ensemble" if ensemble else ""
    out = out or experiment.meta_dir / "explain" / f"{split}_query{query}{suffix}.png"
    title = (
        f"{experiment_dir.name}, {shown}, {split} query {query}\n"
        "each position's share of the cosine (red raises it, blue lowers it)"
    )
    record = {
        "experiment": experiment_dir.name,
        "split": split,
        "models": shown,
        **explanation_record(query, label_list[query], neighbours, explanations),
        "png": out.name,
        "note": "similarity: cosine of the embeddings, as report.html ranks them; contribution_sum: "
        "the sum over position pairs of the decomposition (float64); docs/explain.md",
    }
    draw_explanation(
        out,
        [display_image(image, normalization) for image in images],
        label_list[query],
        neighbours,
        explanations,
        title,
    )
    return out, write_json(out.with_suffix(".json"), record)


def is_avsl(experiment_dir: Path) -> bool:
    """Whether the experiment's embedder is AVSL's (its explanation is the plugin's)."""
    from dmlbench.config.experiment_files import load_saved_configs
    from dmlbench.registry import parse_spec

    embedder = load_saved_configs(experiment_dir).get("config_models", {}).get("models", {}).get("embedder")
    return bool(embedder) and parse_spec(embedder, "models.embedder")[0] == AVSL_EMBEDDER


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dmlbench.explain",
        description="Why a trained experiment retrieves what it retrieves: heatmaps of each query-neighbour "
        "cosine similarity split over pairs of feature-map positions (docs/explain.md).",
    )
    parser.add_argument("--experiment_name", required=True)
    parser.add_argument("--root_experiment_folder", default="logs")
    parser.add_argument("--dataset_root", default=None, help="data sets folder (default: as for run.py)")
    parser.add_argument("--query", type=int, required=True, help="index of the query image within the split")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--fold",
        type=int,
        default=None,
        help="this fold's best model (0-based; default: the report's best fold)",
    )
    group.add_argument("--ensemble", action="store_true", help="rank with the concatenated fold models")
    parser.add_argument("--split", default="test")
    parser.add_argument("--top", type=int, default=4, help="neighbours explained (default 4)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="PNG path; the JSON goes beside it (default: <experiment>/meta/explain/)",
    )
    add_consent_flags(parser)
    return parser


def run(args: Any) -> list[Path]:
    from dmlbench.data.roots import default_dataset_root

    if args.top < 1:
        raise ConfigError(f"--top {args.top}: must be at least 1")
    if args.out is not None and args.out.suffix.lower() != ".png":
        raise ConfigError(f"--out {args.out}: expected a .png path (the JSON is written beside it)")
    experiment_dir = experiment_folder(Path(args.root_experiment_folder), args.experiment_name)
    dataset_root = Path(args.dataset_root or default_dataset_root())
    if is_avsl(experiment_dir):
        from dmlbench.plugins.avsl.explain import explain as explain_avsl

        if args.ensemble:
            raise ConfigError("--ensemble: AVSL explanations are per fold; give --fold")
        png = explain_avsl(
            experiment_dir, dataset_root, args.query, args.fold or 0, args.split, args.top, out=args.out
        )
        return [png, png.with_suffix(".json")]
    return list(
        explain_experiment(
            experiment_dir, dataset_root, args.query, args.fold, args.ensemble, args.split, args.top, args.out
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    grant_from_flags(args)  # code the folder's config imports runs only with these flags
    try:
        written = run(args)
    except DMLBenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0
