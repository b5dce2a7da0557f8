"""Command line for data sets.

    python -m dmlbench.data download NAME --root DIR [--keep-archives]
    python -m dmlbench.data check NAME --root DIR [--option KEY=VALUE ...] [--full-decode]
    python -m dmlbench.data weights [NAME ...] [--mirror URL]

``download`` fetches, verifies and unpacks a data set (or says how to get it by hand).
``check`` loads the tree, prints images and classes per official split, opens every image and
lists the missing or unreadable ones. ``weights`` fetches pretrained weights (BNInception, a
torchvision model such as resnet50 or resnet50:IMAGENET1K_V2, or a weight file's name; without a
name, every file the shipped configs load) into ``$TORCH_HOME/hub/checkpoints/`` and checks the
sha256 digits in each file's name. Exit codes: 0 fine, 1 a data set problem (download failed,
tree incomplete, bad images), 2 a usage error (unknown name, bad option).
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import logging
import sys
from collections.abc import Sequence
from typing import Any

from dmlbench.config.flag_checks import OneLineArgumentParser
from dmlbench.config.yaml_io import parse_value
from dmlbench.data.check import find_bad_images, format_summary, summarize
from dmlbench.data.download import download_dataset
from dmlbench.errors import ConfigError, DatasetError
from dmlbench.registry import lookup

EXIT_OK, EXIT_DATA_PROBLEM, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m dmlbench.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="fetch, verify and unpack a data set")
    download.add_argument(
        "name", help="registered data set name, e.g. CUB200, Cars196, StanfordOnlineProducts"
    )
    download.add_argument("--root", required=True, help="folder that will contain the data set's folder")
    download.add_argument("--keep-archives", action="store_true", help="keep the archives after unpacking")
    download.add_argument("--no-progress", action="store_true", help="no progress bars")
    weights = commands.add_parser(
        "weights", help="fetch pretrained weights into $TORCH_HOME/hub/checkpoints (checksums checked)"
    )
    weights.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="BNInception, a torchvision model (resnet50, resnet50:IMAGENET1K_V2) or a weight file name "
        "(default: every file the shipped configs load)",
    )
    weights.add_argument("--mirror", help="base URL tried first (the file name is appended)")
    weights.add_argument("--no-progress", action="store_true", help="no progress bars")
    check = commands.add_parser("check", help="validate a data set tree and every image in it")
    check.add_argument("name", help="registered data set name")
    check.add_argument("--root", required=True, help="the --dataset_root the data set is read from")
    check.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="data set constructor option (YAML value), e.g. --option csv_file=mine.csv",
    )
    check.add_argument(
        "--allow-subset",
        action="store_true",
        help="accept image/class counts that differ from the published ones (a known subset)",
    )
    check.add_argument("--full-decode", action="store_true", help="decode every image fully (slower)")
    check.add_argument("--workers", type=int, default=8, help="threads opening images (default 8)")
    check.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r}: expected KEY=VALUE, e.g. --option csv_file=data.csv")
        options[key.strip()] = parse_value(value, f"--option {key.strip()}")  # run.py's rules and bounds
    return options


def _check_options(name: str, dataset_cls: Any, options: dict[str, Any]) -> None:
    """Refuse options the constructor does not take, naming the ones it does."""
    accepted = [
        p
        for p in inspect.signature(dataset_cls).parameters
        if p not in ("self", "root", "transform", "download")
    ]
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"--option {key}: {name} has no such option{hint}; options: {', '.join(accepted) or 'none'}"
            )


def _download(args: argparse.Namespace) -> int:
    dataset_cls = lookup("dataset", args.name, role="download")
    folder = download_dataset(
        dataset_cls, args.root, progress=not args.no_progress, keep_archives=args.keep_archives
    )
    print(f"{args.name}: ready at {folder}")
    return EXIT_OK


def _weights(args: argparse.Namespace) -> int:
    from dmlbench.models.trunks import hub_checkpoint_dir
    from dmlbench.models.weight_files import (
        fetch_weights,
        shipped_model_files,
        weights_by_name,
        weights_of_configs,
    )

    files = [weights_by_name(name) for name in args.names] or weights_of_configs(shipped_model_files())
    folder = hub_checkpoint_dir()
    for weights in files:
        path = fetch_weights(weights, folder, mirror=args.mirror, progress=not args.no_progress)
        print(f"{weights.name}: ready at {path}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    dataset_cls = lookup("dataset", args.name, role="check")
    options = _parse_options(args.option)
    _check_options(args.name, dataset_cls, options)
    dataset = dataset_cls(root=args.root, **options)
    where = getattr(dataset, "folder", args.root)
    print(f"{args.name} at {where}")
    summary = summarize(dataset)
    print(format_summary(summary))
    differing = [row.split for row in summary if not row.matches_published]
    bad = find_bad_images(
        dataset.paths, workers=args.workers, full_decode=args.full_decode, progress=not args.no_progress
    )
    if bad:
        print(f"{len(bad)} of {len(dataset)} images are missing or unreadable:")
        for path, problem in bad:
            print(f"  {path}: {problem}")
        return EXIT_DATA_PROBLEM
    print(f"all {len(dataset)} images open")
    if differing and not args.allow_subset:
        print(
            f"error: the {', '.join(differing)} counts differ from the published ones; a partial or modified copy? "
            "(pass --allow-subset to accept a known subset)",
            file=sys.stderr,
        )
        return EXIT_DATA_PROBLEM
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # --help
        return EXIT_OK if exit_.code == 0 else EXIT_USAGE
    except ConfigError as error:  # a bad command line: one line, not argparse's usage text
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        command = {"download": _download, "check": _check, "weights": _weights}[args.command]
        return command(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DATA_PROBLEM
    except KeyboardInterrupt:
        print("interrupted; a partial download is kept and resumes on the next run", file=sys.stderr)
        return EXIT_DATA_PROBLEM


if __name__ == "__main__":
    sys.exit(main())
