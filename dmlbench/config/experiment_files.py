"""The ``configs/`` folder of an experiment (a run, a search, a trial or a reproduction): the one
place that reads, writes and hashes it.

    configs/config_<category>.yaml   the resolved config, one file per category
    configs/command_line.txt         every command that ran in this folder, time-stamped
    configs/resume_diff_<N>.yaml     overrides applied when a saved config was changed
    configs/split_manifest.json      the folds' sample ids and their sha256
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any, Sequence

from dmlbench.config.files import CATEGORIES
from dmlbench.config.key_checks import check_file_keys
from dmlbench.config.yaml_io import dump_yaml, load_yaml_file
from dmlbench.errors import ExperimentError
from dmlbench.fileio import write_text_atomic

CONFIG_DIR_NAME = "configs"
COMMAND_LINE = "command_line.txt"
SPLIT_MANIFEST = "split_manifest.json"

Config = dict[str, dict[str, Any]]


def json_sha256(value: Any) -> str:
    """sha256 (hex) of ``value`` as canonical JSON (sorted keys; other objects as ``str``)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def config_hash(config: Config) -> str:
    """The sha256 of a whole config (every category)."""
    return json_sha256(config)


def flatten_config(config: Config) -> dict[str, Any]:
    """Merge the categories into one dict (their top-level keys are disjoint)."""
    flat: dict[str, Any] = {}
    for category in CATEGORIES:
        flat.update(config.get(category) or {})
    return flat


def config_dir(experiment_dir: str | Path) -> Path:
    return Path(experiment_dir) / CONFIG_DIR_NAME


def save_configs(config: Config, directory: str | Path) -> None:
    """Write each category of ``config`` to ``directory/<category>.yaml`` (atomically)."""
    for category in CATEGORIES:
        if category in config:
            write_text_atomic(Path(directory) / f"{category}.yaml", dump_yaml(config[category]))


def is_saved_experiment(experiment_dir: str | Path) -> bool:
    """A folder written by a run (complete configs), as opposed to an exp_configs/ diff."""
    return (config_dir(experiment_dir) / COMMAND_LINE).exists()


def read_category_files(experiment_dir: str | Path) -> Config:
    """The ``config_<category>.yaml`` files present in ``experiment_dir/configs`` (maybe none)."""
    folder = config_dir(experiment_dir)
    config = {category: load_yaml_file(folder / f"{category}.yaml") for category in CATEGORIES
              if (folder / f"{category}.yaml").exists()}
    for category, content in config.items():
        check_file_keys(content, category, folder / f"{category}.yaml")
    return config


def load_saved_configs(experiment_dir: str | Path) -> Config:
    """The resolved config saved in ``experiment_dir/configs``; an error when there is none."""
    config = read_category_files(experiment_dir)
    if not config:
        raise ExperimentError(f"{config_dir(experiment_dir)} holds no config_*.yaml: the folder was not prepared "
                              "by a run (or its configs/ folder was removed)")
    return config


def record_command_line(experiment_dir: str | Path, argv: Sequence[str] | None, note: str | None = None,
                        overrides: dict[str, Any] | None = None, append: bool = True) -> None:
    """Add a time-stamped ``python run.py ...`` line (or a ``# note`` line) to command_line.txt;
    ``overrides`` (a changed saved config) are kept as the next ``resume_diff_<N>.yaml``."""
    folder = config_dir(experiment_dir)
    path = folder / COMMAND_LINE
    previous = path.read_text() if append and path.exists() else ""
    if note is not None:
        line = f"# {note}\n"
    else:
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        line = f"{stamp}  python run.py {shlex.join(argv or [])}\n"
    write_text_atomic(path, previous + line)
    if overrides:
        index = len(list(folder.glob("resume_diff_*.yaml")))
        write_text_atomic(folder / f"resume_diff_{index}.yaml", dump_yaml(overrides))


def check_or_save_split_manifest(experiment_dir: str | Path, schemes: dict[str, Any]) -> str:
    """Save the folds' manifest with its sha256, or check it against the saved one; -> sha256."""
    digest = json_sha256(schemes)
    path = config_dir(experiment_dir) / SPLIT_MANIFEST
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("sha256") != digest:
            raise ExperimentError(
                f"the data split differs from the one saved in {path} (sha256 {saved.get('sha256', '?')[:12]} "
                f"vs {digest[:12]}): the data set or split manager changed; use a new --experiment_name"
            )
    else:
        write_text_atomic(path, json.dumps({"sha256": digest, "schemes": schemes}, indent=1) + "\n")
    return digest


def saved_split_manifest_hash(experiment_dir: str | Path) -> str | None:
    path = config_dir(experiment_dir) / SPLIT_MANIFEST
    return json.loads(path.read_text()).get("sha256") if path.exists() else None
