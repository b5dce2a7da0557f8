"""``python -m dmlbench.report EXPERIMENT [--queries N] [--top_k K]``: draw the retrieval
examples of an experiment trained earlier (its folds' ``best.pt`` embed the test split; the
best fold and the concatenated ensemble) and rewrite ``meta/report.html`` (and report.json)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmlbench.errors import DMLBenchError, ExperimentError
from dmlbench.user_plugins import add_consent_flags, grant_from_flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dmlbench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help="experiment folder (e.g. logs/demo)")
    parser.add_argument(
        "--queries", type=int, default=8, help="number of queries drawn (half of them the worst)"
    )
    parser.add_argument("--top_k", type=int, default=5, help="neighbours shown per query")
    parser.add_argument("--split", default="test", help="split whose samples are queried (default test)")
    parser.add_argument("--dataset_root", default=None, help="data sets folder (default: as for run.py)")
    add_consent_flags(parser)
    return parser


def refresh_report(experiment_dir: Path, dataset_root: Path, queries: int, top_k: int, split: str) -> Path:
    """Retrieval examples of ``experiment_dir`` drawn again; -> the rewritten report.html."""
    from dmlbench.config.experiment_files import is_saved_experiment, is_search_folder, load_saved_configs
    from dmlbench.records.environment import CPU_FILE, phase_times, versions
    from dmlbench.records.html_render import write_html_report
    from dmlbench.records.run_report import without_history, write_report
    from dmlbench.runner import Experiment
    from dmlbench.training import checkpoint
    from dmlbench.training.fold import training_summary

    if is_search_folder(experiment_dir):
        raise ExperimentError(
            f"{experiment_dir} is a search; run this on its best trial or a reproduction "
            f"folder, e.g. {experiment_dir / 'trials' / 'trial_0000'}"
        )
    if not is_saved_experiment(experiment_dir):
        raise ExperimentError(f"{experiment_dir} is not an experiment folder (no configs/ inside)")
    if queries < 1 or top_k < 1:
        raise ExperimentError(f"--queries and --top_k must be at least 1 (got {queries}, {top_k})")
    experiment = Experiment(load_saved_configs(experiment_dir), experiment_dir, dataset_root)
    training: dict[str, Any] = {}
    for fold in experiment.folds:
        latest = experiment.checkpoint_dir(fold) / "latest.pt"
        if latest.exists():
            training[fold.scheme] = training_summary(checkpoint.load(latest)["state"])
    report_path = experiment.meta_dir / "report.json"
    report = (
        json.loads(report_path.read_text())
        if report_path.exists()
        else {
            "experiment": experiment_dir.name,
            "results": {},
            "plots": [],
            "training": without_history(training),
        }
    )
    report["retrieval"] = experiment.retrieval_examples(training, split, queries, top_k)
    report["versions"] = versions()
    report["phase_times"] = phase_times(experiment.meta_dir)
    report["phase_cpu_times"] = phase_times(experiment.meta_dir, CPU_FILE)
    write_report(experiment.meta_dir, report)
    return write_html_report(experiment_dir, report)


def main(argv: Sequence[str] | None = None) -> int:
    from dmlbench.data.roots import default_dataset_root

    args = build_parser().parse_args(argv)
    grant_from_flags(args)  # code the folder's config imports runs only with these flags
    try:
        path = refresh_report(
            Path(args.experiment),
            Path(args.dataset_root or default_dataset_root()),
            args.queries,
            args.top_k,
            args.split,
        )
    except DMLBenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
