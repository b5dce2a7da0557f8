"""The config a command line runs: category files (built-in, --root_config_folder, an exp_config
or a saved experiment) merged in order, then the command line's overrides."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from dmlbench.config.assemble import assemble_config, replacement_files
from dmlbench.config.defaults import BUILTIN_CONFIG_DIR
from dmlbench.config.exp_config_lookup import find_exp_config
from dmlbench.config.experiment_files import is_saved_experiment, read_category_files
from dmlbench.config.files import exp_config_file_lists, parse_file_list
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
    args: argparse.Namespace,
    file_lists: dict[str, list[str]] | None = None,
    replacements: dict[str, Path] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each category from its file list on the command line, else from ``file_lists`` (an
    exp_config's ``config_files.yaml``), else [default]; a file of ``replacements`` replaces its
    category's files as in powerful-benchmarker (:mod:`dmlbench.config.assemble`). Files in
    powerful-benchmarker's vocabulary are translated, one notice line each on stderr."""
    lists = dict(file_lists or {})
    for category in CATEGORIES:
        value = getattr(args, category)
        if value:
            lists[category] = parse_file_list(" ".join(value), f"--{category}")
    config, notices = assemble_config(lists, _config_dirs(args), replacements)
    print_notices(notices)
    return config


def reproduced_configs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``--reproduce_results DIR``: a saved experiment's categories are read alone; a category file
    of an exp_configs/ entry (or of a powerful-benchmarker folder) replaces that category's files, as
    in powerful-benchmarker; the other categories start from the command line's file lists, else
    those of its ``config_files.yaml``, else [default]."""
    directory = find_exp_config(args.reproduce_results)
    if is_saved_experiment(directory):
        config = default_configs(args)
        config.update(read_category_files(directory))
        return config
    return default_configs(args, exp_config_file_lists(directory / "configs"), replacement_files(directory))


def print_notices(notices: list[str]) -> None:
    """One ``note:`` line on stderr per powerful-benchmarker key translated."""
    for notice in notices:
        print(f"note: powerful-benchmarker {notice}", file=sys.stderr)


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
