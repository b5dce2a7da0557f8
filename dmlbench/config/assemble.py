"""A config assembled from category files, as powerful-benchmarker 0.9 assembles it.

Each category is built from a list of file names merged in order (``--config_general [default,
with_cars196]``; else the folder's ``config_files.yaml``; else ``[default]``). With
``--reproduce_results DIR`` a category file in ``DIR/configs`` *replaces* that category's files, as
in powerful-benchmarker: each of its top-level keys replaces the key's whole value (a
``loss_funcs`` with one loss is that one loss, never merged with the default's); the keys it leaves
out keep the listed files' values, else the built-in default's (dmlbench's own settings, which PB files
do not have; also for a category whose files come from --root_config_folder). A suffixed
top-level key (``optimizers~APPLY~3``) acts on the listed files' value as in any merge.

Every file may use powerful-benchmarker's vocabulary (:mod:`dmlbench.config.pb_vocabulary`): its keys
are translated, and a translated key owned by another category (``trainer.freeze_trunk_batchnorm``
-> config_models' ``freeze_trunk_batchnorm``; PB's ``splits_to_eval`` in config_dataset) moves there.
One notice per translation is returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dmlbench.config.defaults import BUILTIN_CONFIG_DIR
from dmlbench.config.files import find_config_file, parse_file_list
from dmlbench.config.key_checks import base_key, check_file_keys, keys_by_category
from dmlbench.config.keys import CATEGORIES
from dmlbench.config.merge import merge_configs
from dmlbench.config.pb_values import refuse_pb_features
from dmlbench.config.pb_vocabulary import translate_fragment
from dmlbench.config.yaml_io import load_yaml_file
from dmlbench.errors import ConfigError

Config = dict[str, dict[str, Any]]
#: Keys powerful-benchmarker keeps in another category than dmlbench: (key, PB's category).
PB_PLACEMENTS = {("splits_to_eval", "config_dataset")}


def owner_of(key: Any) -> str | None:
    """The category whose default.yaml declares ``key`` (suffix ignored), else None."""
    base = base_key(key)
    return next((category for category, keys in keys_by_category().items() if base in keys), None)


def read_category_file(path: Path, category: str) -> tuple[dict[str, Any], Config, list[str]]:
    """A category file translated: (its own keys, {other category: keys moved there}, notices)."""
    try:
        content = load_yaml_file(path) or {}
        if not isinstance(content, dict):
            raise ConfigError(f"expected a mapping of config keys, got {type(content).__name__}")
        refuse_pb_features(content)
        translated, notices = translate_fragment(content)
        own: dict[str, Any] = {}
        moved: Config = {}
        for key, value in translated.items():
            owner = owner_of(key)
            placed_by_pb = (base_key(key), category) in PB_PLACEMENTS
            if owner is not None and owner != category and (key not in content or placed_by_pb):
                moved.setdefault(owner, {})[key] = value
                if placed_by_pb:
                    notices.append(f"{base_key(key)}: moved to {owner} (where dmlbench keeps it)")
            else:
                own[key] = value
        check_file_keys(own, category, path)
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if str(path) in message else f"{path}: {message}") from error
    return own, moved, [f"{path}: {notice}" for notice in notices]


def as_replacement(fragment: Mapping[str, Any]) -> dict[str, Any]:
    """``fragment`` whose plain top-level keys replace (``~OVERRIDE~``) instead of merging."""
    return {(f"{key}~OVERRIDE~" if "~" not in str(key) else key): value for key, value in fragment.items()}


def assemble_config(
    file_lists: Mapping[str, Sequence[str]],
    config_dirs: Sequence[Path],
    replacements: Mapping[str, Path] | None = None,
) -> tuple[Config, list[str]]:
    """Every category from its file list (``[default]`` when absent), each replaced by
    ``replacements[category]`` where given (rule in the module docstring); -> (config, notices)."""
    config: Config = {}
    notices: list[str] = []
    moves: list[tuple[str, dict[str, Any], bool]] = []
    outside: list[str] = []  # categories with a file from outside dmlbench's own configs
    for category in CATEGORIES:
        names = parse_file_list(list(file_lists.get(category, ["default"])), f"--{category}")
        merged: dict[str, Any] = {}
        for name in names:
            path = find_config_file(category, name, config_dirs)
            if path.resolve().parent.parent != BUILTIN_CONFIG_DIR.resolve():
                outside.append(category)
            own, moved, found = read_category_file(path, category)
            merged = _merge(merged, own, path)
            moves += [(owner, keys, False) for owner, keys in moved.items()]
            notices += found
        replacement = (replacements or {}).get(category)
        if replacement is not None:
            outside.append(category)
            own, moved, found = read_category_file(replacement, category)
            merged = _merge(merged, as_replacement(own), replacement)
            moves += [(owner, keys, True) for owner, keys in moved.items()]
            notices += found
        config[category] = merged
    for owner, keys, replace in moves:
        config[owner] = merge_configs(config[owner], as_replacement(keys) if replace else keys)
    for category in outside:
        config[category] = with_builtin_defaults(category, config[category])
    return config, notices


def with_builtin_defaults(category: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the keys it lacks taken from dmlbench's built-in ``default.yaml`` of
    ``category`` (a powerful-benchmarker file has none of dmlbench's own settings), in its order."""
    builtin = load_yaml_file(BUILTIN_CONFIG_DIR / category / "default.yaml") or {}
    result = {key: values.get(key, default) for key, default in builtin.items()}
    result.update({key: value for key, value in values.items() if key not in result})
    return result


def _merge(base: dict[str, Any], override: dict[str, Any], path: Path) -> dict[str, Any]:
    try:
        return merge_configs(base, override)
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if str(path) in message else f"{path}: {message}") from error


def replacement_files(directory: Path) -> dict[str, Path]:
    """The ``config_<category>.yaml`` files of ``directory/configs`` (an exp_configs entry)."""
    folder = Path(directory) / "configs"
    return {
        category: folder / f"{category}.yaml"
        for category in CATEGORIES
        if (folder / f"{category}.yaml").is_file()
    }
