"""Config categories on disk: ``<config dir>/<category>/<name>.yaml``.

A category is built from a list of file names merged in order, as in powerful-benchmarker
(``--config_general [default, with_cars196]`` loads ``default.yaml`` then merges
``with_cars196.yaml`` over it, suffixes and all). Several config folders may be searched:
for each name the first folder that has the file wins (e.g. an experiment's own
``exp_configs/<name>/configs`` before the defaults in ``dmlbench/configs``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmlbench.config.key_checks import check_file_keys
from dmlbench.config.keys import CATEGORIES
from dmlbench.config.merge import merge_configs
from dmlbench.config.yaml_io import load_yaml_file, parse_value
from dmlbench.errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def _check_name(name: Any, flag: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{flag}: config names must be non-empty words, got {name!r}")
    name = name.strip()
    if name.endswith(".yaml"):
        name = name[: -len(".yaml")]
    if not _NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(
            f"{flag}: {name!r} is not a config name; use bare file names such as "
            f"[default, with_cars196] (letters, digits, _ - .)"
        )
    return name


def parse_file_list(value: str | Sequence[str], flag: str) -> list[str]:
    """Config names from ``"[default, with_cars196]"``, ``"default"``, ``"default with_x"``
    or a list of strings. Raises :class:`ConfigError` naming ``flag`` for anything else."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = parse_value(text, flag)
            if not isinstance(parsed, list):
                raise ConfigError(f"{flag}: expected a list such as [default, with_cars196], got {text!r}")
            names = parsed
        else:
            names = text.replace(",", " ").split()
    elif isinstance(value, (list, tuple)):
        names = list(value)
    else:
        raise ConfigError(f"{flag}: expected a list such as [default, with_cars196], got {value!r}")
    if not names:
        raise ConfigError(f"{flag}: the list of config names is empty; e.g. [default]")
    return [_check_name(name, flag) for name in names]


def available_names(category: str, config_dirs: Sequence[Path]) -> list[str]:
    """Sorted names of the ``.yaml`` files of ``category`` in any of ``config_dirs``."""
    names: set[str] = set()
    for folder in config_dirs:
        category_dir = Path(folder) / category
        if category_dir.is_dir():
            names.update(path.stem for path in category_dir.glob("*.yaml") if path.is_file())
    return sorted(names)


def find_config_file(category: str, name: str, config_dirs: Sequence[Path]) -> Path:
    """The file for ``name`` in the first folder that has it, else a :class:`ConfigError`
    listing the available names, nearest first."""
    for folder in config_dirs:
        candidate = Path(folder) / category / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    available = available_names(category, config_dirs)
    searched = ", ".join(str(Path(folder) / category) for folder in config_dirs) or "no folders"
    if available:
        nearest = difflib.get_close_matches(name, available, n=len(available), cutoff=0.0)
        listing = f"available: {', '.join(nearest)}"
    else:
        listing = "that category has no .yaml files there"
    raise ConfigError(f"--{category}: no config named '{name}' (looked in {searched}); {listing}")


def load_category(category: str, names: list[str], config_dirs: list[Path], check_keys: bool = False) -> dict:
    """Merge ``<dir>/<category>/<name>.yaml`` for each name, in order; with ``check_keys`` every
    top-level key must be one of the category's (:mod:`dmlbench.config.key_checks`)."""
    if category not in CATEGORIES:
        nearest = difflib.get_close_matches(category, CATEGORIES, n=1, cutoff=0.5)
        hint = f" (did you mean {nearest[0]}?)" if nearest else ""
        raise ConfigError(f"unknown config category '{category}'{hint}; categories: {', '.join(CATEGORIES)}")
    names = parse_file_list(names, f"--{category}")
    merged: dict = {}
    for name in names:
        path = find_config_file(category, name, config_dirs)
        try:
            content = load_yaml_file(path)
            if check_keys:
                check_file_keys(content, category, path)
            merged = merge_configs(merged, content)
        except ConfigError as error:
            message = str(error)
            if str(path) not in message:
                raise ConfigError(f"{path}: {message}") from error
            raise
    return merged


#: In an exp_configs/<name>/configs folder: the file lists its categories start from.
EXP_CONFIG_FILE_LISTS = "config_files.yaml"


def exp_config_file_lists(config_dir: Path) -> dict[str, list[str]]:
    """The per-category file lists an exp_config declares in ``config_files.yaml``, e.g.
    ``{config_dataset: [default, with_cars196], config_general: [default, with_cars196]}``.

    They play the part of ``--config_dataset [default, with_cars196]`` on the command line (which,
    when given, wins), so an exp_config names its data set the way the papers' commands do.
    A folder without the file declares nothing (every category starts from ``[default]``).
    """
    path = Path(config_dir) / EXP_CONFIG_FILE_LISTS
    if not path.is_file():
        return {}
    content = load_yaml_file(path) or {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping such as {{config_dataset: [default, with_cars196]}}")
    lists = {}
    for category, names in content.items():
        if category not in CATEGORIES:
            nearest = difflib.get_close_matches(str(category), CATEGORIES, n=1, cutoff=0.5)
            hint = f" (did you mean {nearest[0]}?)" if nearest else ""
            raise ConfigError(
                f"{path}: unknown config category {category!r}{hint}; categories: {', '.join(CATEGORIES)}"
            )
        lists[category] = parse_file_list(names, f"{path}: {category}")
    return lists
