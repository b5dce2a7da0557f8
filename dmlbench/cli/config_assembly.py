"""The config a command line runs: category files (built-in, --root_config_folder, an exp_config
or a saved experiment) merged in order, then the command line's overrides."""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import Any

from dmlbench.config.defaults import BUILTIN_CONFIG_DIR
from dmlbench.config.exp_config_lookup import find_exp_config
from dmlbench.config.experiment_files import is_saved_experiment, read_category_files
from dmlbench.config.files import exp_config_file_lists, load_category, parse_file_list
from dmlbench.config.keys import CATEGORIES
from dmlbench.config.merge import merge_configs
from dmlbench.errors import ConfigError

SUFFIX_MARK = "~"


def check_root_config_folder(args: argparse.Namespace) -> None:
    """A ``--root_config_folder`` that is not a folder is refused (it would be ignored silently)."""
    folder = args.root_config_folder
    if folder is not None and not Path(folder).is_dir():
        what = "is a file" if Path(folder).exists() else "does not exist"
        raise ConfigError(
            f"--root_config_folder {folder}: {what}; give a folder of config_<category>/<name>.yaml files"
        )


def _config_dirs(args: argparse.Namespace) -> list[Path]:
    dirs = [Path(args.root_config_folder)] if args.root_config_folder else []
    return dirs + [BUILTIN_CONFIG_DIR]


def default_configs(
    args: argparse.Namespace, file_lists: dict[str, list[str]] | None = None
) -> dict[str, dict[str, Any]]:
    """Each category from its file list on the command line, else from ``file_lists`` (an
    exp_config's ``config_files.yaml``), else [default]."""
    config = {}
    for category in CATEGORIES:
        value = getattr(args, category)
        fallback = (file_lists or {}).get(category, ["default"])
        names = parse_file_list(" ".join(value), f"--{category}") if value else fallback
        config[category] = load_category(category, names, _config_dirs(args), check_keys=True)
    return config


def reproduced_configs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``--reproduce_results DIR``: a saved experiment's categories replace the defaults; an
    exp_configs/ entry's files are merged over them (they hold only what differs), starting from
    the file lists of its ``config_files.yaml`` where the command line gives none."""
    directory = find_exp_config(args.reproduce_results)
    saved = is_saved_experiment(directory)
    config = default_configs(args, None if saved else exp_config_file_lists(directory / "configs"))
    for category, content in read_category_files(directory).items():
        config[category] = content if saved else merge_configs(config[category], content)
    return config


def _override_base_key(key: str) -> str:
    return key.split(".", 1)[0].split(SUFFIX_MARK, 1)[0]


def apply_overrides(
    config: dict[str, dict[str, Any]], overrides: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Merge each command-line override into the category that owns its top-level key."""
    config = {category: dict(values) for category, values in config.items()}
    owners = {key: category for category, values in config.items() for key in values}
    for key, value in overrides.items():
        base = _override_base_key(key)
        category = owners.get(base)
        if category is None:
            close = difflib.get_close_matches(base, list(owners), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join('--' + c for c in close)}?" if close else ""
            raise ConfigError(f"--{key}: unknown config key {base!r}{hint} (see {BUILTIN_CONFIG_DIR})")
        config[category] = merge_configs(config[category], {key: value})
    return config
