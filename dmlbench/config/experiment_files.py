"""The ``configs/`` folder of an experiment (a run, a search, a trial or a reproduction): the one
place that reads, writes and hashes it.

    configs/config_<category>.yaml   the resolved config, one file per category
    configs/command_line.txt         every command that ran in this folder, time-stamped
    configs/resume_diff_<N>.yaml     overrides applied when a saved config was changed
    configs/split_manifest.json      the folds' sample ids and their sha256
    configs/config_sha256.json       sha256 of each config_<category>.yaml's content, written last:
                                     its presence marks a complete config; resume checks it
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmlbench.config.key_checks import check_file_keys
from dmlbench.config.keys import CATEGORIES
from dmlbench.config.yaml_io import dump_yaml, load_yaml_file
from dmlbench.errors import ConfigError, ExperimentError
from dmlbench.fileio import write_text_atomic
from dmlbench.integrity import corrupt, read_json_object

#: A search's settings, fixed at its start (:mod:`dmlbench.search.layout`): they mark a search's folder.
SEARCH_SETTINGS = Path("trials") / "search.json"

CONFIG_DIR_NAME = "configs"
COMMAND_LINE = "command_line.txt"
SPLIT_MANIFEST = "split_manifest.json"
CONFIG_HASHES = "config_sha256.json"

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
    """Write each category of ``config`` to ``directory/<category>.yaml`` (atomically), then
    ``config_sha256.json`` with each file's sha256 (the mark of a complete config)."""
    hashes = {}
    for category in CATEGORIES:
        if category in config:
            text = dump_yaml(config[category])
            write_text_atomic(Path(directory) / f"{category}.yaml", text)
            hashes[category] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    write_text_atomic(Path(directory) / CONFIG_HASHES, json.dumps(hashes, indent=1, sort_keys=True) + "\n")


def configs_complete(experiment_dir: str | Path) -> bool:
    """Whether the configs of ``experiment_dir`` were written completely (``config_sha256.json``)."""
    return (config_dir(experiment_dir) / CONFIG_HASHES).exists()


def is_search_folder(folder: str | Path) -> bool:
    """Whether ``folder`` is a hyperparameter search's: it holds :data:`SEARCH_SETTINGS`."""
    return (Path(folder) / SEARCH_SETTINGS).exists()


def is_saved_experiment(experiment_dir: str | Path) -> bool:
    """A folder written by a run (complete configs), as opposed to an exp_configs/ diff."""
    return (config_dir(experiment_dir) / COMMAND_LINE).exists()


def read_category_files(experiment_dir: str | Path) -> Config:
    """The ``config_<category>.yaml`` files present in ``experiment_dir/configs`` (maybe none)."""
    folder = config_dir(experiment_dir)
    config = {
        category: load_yaml_file(folder / f"{category}.yaml")
        for category in CATEGORIES
        if (folder / f"{category}.yaml").exists()
    }
    for category, content in config.items():
        check_file_keys(content, category, folder / f"{category}.yaml")
    return config


def load_saved_configs(experiment_dir: str | Path) -> Config:
    """The resolved config saved in ``experiment_dir/configs``, each file checked against its
    sha256 in ``config_sha256.json`` where that exists; an error when there is none."""
    folder = config_dir(experiment_dir)
    remedy = (
        "restore it (from a backup, or copy it from the folder's command in command_line.txt), or "
        "start again under a new --experiment_name"
    )
    present = [category for category in CATEGORIES if (folder / f"{category}.yaml").exists()]
    if not present:
        raise ExperimentError(
            f"{folder} holds no config_*.yaml: the folder was not prepared "
            "by a run (or its configs/ folder was removed)"
        )
    hash_path = folder / CONFIG_HASHES
    if hash_path.exists():  # integrity first: an edited file is named as edited, whatever it now holds
        saved = read_json_object(
            hash_path,
            "delete it if the config_*.yaml files beside it are intact (it is "
            "rewritten on the next run), else start again under a new --experiment_name",
        )
        for category in sorted(set(saved) | set(present)):
            path = folder / f"{category}.yaml"
            if category not in present:
                raise ExperimentError(f"{path} is missing (listed in {hash_path.name}): {remedy}")
            if saved.get(category) != hashlib.sha256(path.read_bytes()).hexdigest():
                raise corrupt(
                    path,
                    f"its content does not match its sha256 in {hash_path.name}; it was edited or cut short",
                    remedy + "; to change a saved config on purpose use "
                    "--merge_argparse_when_resuming --key value",
                )
    try:
        return read_category_files(experiment_dir)
    except ConfigError as error:
        raise ExperimentError(f"{error} -- the saved config is damaged: {remedy}") from None


def record_command_line(
    experiment_dir: str | Path,
    argv: Sequence[str] | None,
    note: str | None = None,
    overrides: dict[str, Any] | None = None,
    append: bool = True,
) -> None:
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
        saved = read_json_object(
            path,
            "delete it: the next run rebuilds it from the data set and the saved split manager",
            required=("sha256",),
        )
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
    if not path.exists():
        return None
    return read_json_object(path, "delete it: it is rebuilt on the next run", required=("sha256",))["sha256"]
