"""Test results of many experiment folders, read for one comparison table
(:mod:`dmlbench.compare`): each folder's trained test numbers, its data set, its split manifest
and its method, and why it must stay out of the table (unfinished, another split).

A plain experiment gives the separated mean ± SEM over its fold models and the concatenated
score; a search with two or more reproductions gives the mean over reproductions with its 95%
Student-t interval (the search report's aggregate)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dmlbench.config.experiment_files import is_search_folder, saved_split_manifest_hash
from dmlbench.config.yaml_io import load_yaml_file
from dmlbench.registry import parse_spec

MODES = ("concatenated", "separated")
METRICS = {"precision_at_1": "P@1", "r_precision": "RP", "mean_average_precision_at_r": "MAP@R"}


@dataclass
class Cell:
    """A value in percent and its spread: ``sem`` (± SEM) or ``interval`` (low, high)."""

    mean: float
    sem: float | None = None
    interval: tuple[float, float] | None = None


@dataclass
class ExperimentResult:
    folder: Path
    dataset: str | None = None
    split_sha256: str | None = None
    method: str | None = None
    loss_key: str | None = None
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    spread: str = "SEM over folds"
    problem: str | None = None

    @property
    def name(self) -> str:
        return self.folder.name


def _config(folder: Path, category: str) -> dict[str, Any]:
    path = folder / "configs" / f"{category}.yaml"
    return (load_yaml_file(path) or {}) if path.exists() else {}


def _spec_name(value: Any) -> str | None:
    if not isinstance(value, dict) or len(value) != 1:
        return None
    return str(next(iter(value))).split("~")[0]


def method_of(folder: Path) -> tuple[str | None, str | None]:
    """(method label, key into the published table): the loss class, "+ miner" when a tuple
    miner is set, "per class" for MarginLoss with learned per-class beta, then plugin names."""
    losses = _config(folder, "config_loss_and_miners")
    loss_spec = (losses.get("loss_funcs") or {}).get("metric_loss")
    loss = _spec_name(loss_spec)
    if loss is None:
        return None, None
    key = loss
    kwargs = next(iter((loss_spec or {}).values())) or {}
    if loss == "MarginLoss" and kwargs.get("learn_beta") and kwargs.get("num_classes", "x") is not None:
        key += " per class"
    miner = _spec_name((losses.get("mining_funcs") or {}).get("tuple_miner"))
    if miner:
        key += f" + {miner}"
    plugins = _config(folder, "config_general").get("training_plugins") or {}
    names = [_spec_name({k: v}) for k, v in plugins.items()] if isinstance(plugins, dict) else []
    label = " + ".join([key, *[n for n in names if n]])
    return label, (key if not names else None)


def _dataset_of(folder: Path) -> str | None:
    spec = _config(folder, "config_dataset").get("dataset")
    try:
        return parse_spec(spec, "dataset")[0] if spec else None
    except Exception:
        return None


def _percent(value: float) -> float:
    return 100 * float(value)


def _pct(value: float | None) -> float | None:
    return None if value is None else _percent(value)


def _cells_from_summary(entry: dict[str, Any]) -> dict[tuple[str, str], Cell]:
    cells = {}
    separated = entry.get("separated", {})
    several = len(separated.get("per_fold", {})) != 1  # one fold model: no SEM to show
    for metric in METRICS:
        if metric in separated.get("mean", {}):
            cells["separated", metric] = Cell(
                _percent(separated["mean"][metric]), _pct(separated["sem"].get(metric)) if several else None
            )
        if metric in entry.get("concatenated", {}):
            cells["concatenated", metric] = Cell(_percent(entry["concatenated"][metric]))
    return cells


def _cells_from_reproductions(entry: dict[str, Any]) -> dict[tuple[str, str], Cell]:
    cells = {}
    for mode in MODES:
        for metric in METRICS:
            stat = (entry.get(mode) or {}).get(metric)
            if stat:
                cells[mode, metric] = Cell(
                    _percent(stat["mean"]), interval=(_percent(stat["ci_low"]), _percent(stat["ci_high"]))
                )
    return cells


def _newer_checkpoint(folder: Path, than: float) -> bool:
    return any(path.stat().st_mtime > than for path in folder.glob("*/checkpoints/latest.pt"))


def read_experiment(folder: Path, split: str = "test") -> ExperimentResult:
    """The trained test results of ``folder`` (a plain experiment or a search)."""
    folder = Path(folder)
    result = ExperimentResult(folder)
    if not (folder / "configs").is_dir():
        result.problem = "not an experiment folder (no configs/)"
        return result
    result.dataset = _dataset_of(folder)
    result.method, result.loss_key = method_of(folder)
    report_path = folder / "meta" / "report.json"
    is_search = is_search_folder(folder)
    if not report_path.exists():
        result.problem = (
            "unfinished search (no report yet)"
            if is_search
            else "unfinished (no meta/report.json: still training, or stopped before its test)"
        )
        return result
    report = json.loads(report_path.read_text())
    if is_search:
        best = report.get("best_trial") or {}
        result.split_sha256 = (
            saved_split_manifest_hash(folder / best["folder"]) if best.get("folder") else None
        )
        reproductions = report.get("reproductions") or {}
        entry = ((reproductions.get("results") or {}).get(split) or {}).get("trained")
        if reproductions.get("count", 0) >= 2 and entry:
            result.cells = _cells_from_reproductions(entry)
            result.spread = (
                f"{int(100 * reproductions['level'])}% interval over {reproductions['count']} reproductions"
            )
        else:
            trained = ((report.get("best_trial_test") or {}).get(split) or {}).get("trained")
            result.cells = _cells_from_summary(trained) if trained else {}
    else:
        result.dataset = report.get("dataset") or result.dataset
        result.split_sha256 = report.get("split_manifest_sha256")
        if _newer_checkpoint(folder, report_path.stat().st_mtime):
            result.problem = "unfinished (training went on after the last report: still training?)"
            return result
        trained = (report.get("results", {}).get(split) or {}).get("trained")
        result.cells = _cells_from_summary(trained) if trained else {}
    if not result.cells:
        result.problem = f"no test of trained models on the {split} split"
    return result


def flag_split_mismatches(results: list[ExperimentResult]) -> None:
    """Per data set, the split most experiments share (the first one's on a tie) is the
    reference; experiments with another or no split manifest get a problem."""
    by_dataset: dict[str | None, list[ExperimentResult]] = {}
    for result in results:
        if result.problem is None:
            by_dataset.setdefault(result.dataset, []).append(result)
    for dataset, group in by_dataset.items():
        counts = Counter(r.split_sha256 for r in group if r.split_sha256)
        if not counts:
            continue
        reference = max(counts, key=lambda h: (counts[h], -[r.split_sha256 for r in group].index(h)))
        for result in group:
            if result.split_sha256 is None:
                result.problem = "no saved split manifest: its split cannot be checked"
            elif result.split_sha256 != reference:
                others = ", ".join(r.name for r in group if r.split_sha256 == reference)
                result.problem = (
                    f"another split of {dataset} (manifest {result.split_sha256[:12]} vs "
                    f"{reference[:12]} of {others})"
                )


def read_experiments(folders: list[Path], split: str = "test") -> list[ExperimentResult]:
    results = [read_experiment(Path(f), split) for f in folders]
    flag_split_mismatches(results)
    return results


def published_results() -> dict[str, Any]:
    """The MLRC paper's numbers (``mlrc_published.yaml``, with its source)."""
    return load_yaml_file(Path(__file__).with_name("mlrc_published.yaml"))
