"""Evaluate saved embeddings without a model.

    python -m dmlbench.evaluation --embeddings E.npy --labels L.npy [--k K] [--recall-at 1 2 4 8]
    python -m dmlbench.evaluation --query-embeddings Q.npy --query-labels QL.npy \
        --gallery-embeddings G.npy --gallery-labels GL.npy        # In-Shop style

Files: .npy, .npz (holding one array), .pt/.pth (a saved tensor), .txt/.csv (numbers, or labels
one per line). Prints one "name: 12.34%" line per metric, in percent like the runner (or JSON fractions with --json). A bad input
(missing file, shape mismatch, ...) prints one line to stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dmlbench.errors import ConfigError, DatasetError, DMLBenchError

EXIT_BAD_INPUT = 2


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line (and exit code 2), like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python -m dmlbench.evaluation", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--embeddings",
        "--gallery-embeddings",
        dest="embeddings",
        required=True,
        help="reference (gallery) embeddings [N, D]; compared to self unless queries are given",
    )
    parser.add_argument("--labels", "--gallery-labels", dest="labels", required=True, help="labels [N]")
    parser.add_argument("--query-embeddings", help="query embeddings [Q, D] (query vs gallery mode)")
    parser.add_argument("--query-labels", help="query labels [Q]")
    parser.add_argument(
        "--k", type=int, default=None, help="neighbours per query (default: what MAP@R needs)"
    )
    parser.add_argument("--recall-at", type=int, nargs="*", default=[], metavar="K", help="report Recall@K")
    parser.add_argument("--chunk-size", type=int, default=None, help="queries per block (bounds memory)")
    parser.add_argument("--no-normalize", action="store_true", help="do not L2-normalise the embeddings")
    parser.add_argument("--ranking", choices=("dot", "euclidean"), default="dot")
    parser.add_argument("--binarize", action="store_true", help="rank by Hamming distance of sign codes")
    parser.add_argument("--backend", choices=("torch", "faiss"), default="torch")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA if present)")
    parser.add_argument("--nmi", action="store_true", help="also k-means NMI")
    parser.add_argument("--ami", action="store_true", help="also k-means AMI")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    return parser


def load_array(path: str, what: str) -> np.ndarray:
    """An array from .npy/.npz/.pt/.pth/.txt/.csv, or a :class:`DatasetError` naming the file."""
    file = Path(path)
    if not file.is_file():
        raise DatasetError(f"{what} file not found: {path}")
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(file, allow_pickle=False)
        if suffix == ".npz":
            with np.load(file, allow_pickle=False) as archive:
                if len(archive.files) != 1:
                    raise DatasetError(f"{path}: an .npz must hold exactly one array, found {archive.files}")
                return archive[archive.files[0]]
        if suffix in (".pt", ".pth"):
            import torch

            tensor = torch.load(file, map_location="cpu", weights_only=True)
            if not isinstance(tensor, torch.Tensor):
                raise DatasetError(f"{path}: expected a saved tensor, found {type(tensor).__name__}")
            return tensor.numpy()
        if suffix in (".txt", ".csv"):
            delimiter = "," if suffix == ".csv" else None
            try:
                return np.loadtxt(file, delimiter=delimiter, ndmin=1)
            except ValueError:
                return np.loadtxt(file, delimiter=delimiter, dtype=str, ndmin=1)
    except DMLBenchError:
        raise
    except Exception as error:  # any reader failure is a corrupt or unreadable file
        raise DatasetError(f"{path}: cannot read {what} ({type(error).__name__}: {error})") from error
    raise DatasetError(f"{path}: unsupported file type {suffix!r}; use .npy, .npz, .pt, .pth, .txt or .csv")


def evaluate_files(args: argparse.Namespace) -> dict[str, float]:
    """Load the files named by the parsed arguments and return the metrics (raises a
    :class:`DMLBenchError` on bad input)."""
    from dmlbench.evaluation.retrieval import retrieval_metrics
    from dmlbench.evaluation.retrieval_settings import RetrievalSettings

    if (args.query_embeddings is None) != (args.query_labels is None):
        raise ConfigError("give --query-embeddings and --query-labels together")
    embeddings = load_array(args.embeddings, "embeddings")
    labels = load_array(args.labels, "labels")
    _check_pair(embeddings, labels, args.embeddings, args.labels)
    query_embeddings = query_labels = None
    if args.query_embeddings is not None:
        query_embeddings = load_array(args.query_embeddings, "query embeddings")
        query_labels = load_array(args.query_labels, "query labels")
        _check_pair(query_embeddings, query_labels, args.query_embeddings, args.query_labels)
        if query_embeddings.shape[1] != embeddings.shape[1]:
            raise DatasetError(
                f"{args.query_embeddings} has {query_embeddings.shape[1]} dims but "
                f"{args.embeddings} has {embeddings.shape[1]}"
            )
    return retrieval_metrics(
        embeddings,
        labels,
        RetrievalSettings(
            k=args.k,
            recall_at=tuple(args.recall_at),
            chunk_size=args.chunk_size,
            normalize=not args.no_normalize,
            ranking=args.ranking,
            binarize=args.binarize,
            backend=args.backend,
            device=args.device,
            nmi=args.nmi,
            ami=args.ami,
        ),
        query_embeddings=query_embeddings,
        query_labels=query_labels,
    )


def _check_pair(embeddings: np.ndarray, labels: np.ndarray, embeddings_path: str, labels_path: str) -> None:
    if embeddings.ndim != 2:
        raise DatasetError(
            f"{embeddings_path}: embeddings must be 2-D [samples, dims], got shape {embeddings.shape}"
        )
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DatasetError(f"{labels_path}: labels must be 1-D, got shape {labels.shape}")
    if len(labels) != len(embeddings):
        raise DatasetError(
            f"{embeddings_path} has {len(embeddings)} rows but {labels_path} has {len(labels)} labels"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: print the metrics; one-line error and exit code 2 on bad input."""
    try:
        args = build_parser().parse_args(argv)
        metrics = evaluate_files(args)
    except DMLBenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(metrics))
    else:
        for (
            name,
            value,
        ) in metrics.items():  # percent with 2 decimals, as the runner prints; --json: fractions
            print(f"{name}: {100 * value:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
