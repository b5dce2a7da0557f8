"""Every key of every config file is checked like a command-line key.

The valid top-level keys of a category are the keys of its built-in ``default.yaml`` (the one place
where a setting is declared). A key is compared without its merge suffix (``loss_funcs~OVERRIDE~``
is ``loss_funcs``). An unknown key fails with the nearest valid names and the file and line where
it is written (PyYAML's composed nodes carry their position); a key written in another category's
file fails naming the file it belongs in.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any

import yaml

from dmlbench.config.keys import CATEGORIES
from dmlbench.config.yaml_io import load_yaml_file
from dmlbench.errors import ConfigError

BUILTIN_CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
SUFFIX_MARK = "~"
#: Nested mappings whose keys are fixed (the rest hold class names, checked by the registry).
NESTED_KEYS: dict[str, tuple[str, ...]] = {"transforms": ("train", "eval")}


@functools.lru_cache(maxsize=1)
def keys_by_category() -> dict[str, tuple[str, ...]]:
    """``{category: keys of its default.yaml}`` (read with the project's YAML loader)."""
    return {
        category: tuple(load_yaml_file(BUILTIN_CONFIG_DIR / category / "default.yaml"))
        for category in CATEGORIES
        if (BUILTIN_CONFIG_DIR / category / "default.yaml").is_file()
    }


def base_key(key: Any) -> str:
    """``loss_funcs~OVERRIDE~`` -> ``loss_funcs``."""
    return str(key).split(SUFFIX_MARK, 1)[0]


def key_lines(path: str | Path) -> dict[tuple[str, ...], int]:
    """1-based line of each mapping key of a YAML file, by its path of keys, e.g.
    ``{("batch_size",): 3, ("transforms", "train"): 7}``; ``{}`` when the file cannot be composed."""
    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    keys = prefix + (key_node.value,)
                    lines.setdefault(keys, key_node.start_mark.line + 1)
                    walk(value_node, keys)

    walk(root, ())
    return lines


def _where(path: str | Path | None, keys: tuple[str, ...]) -> str:
    if path is None:
        return ""
    line = key_lines(path).get(keys)
    return f"{path}:{line}: " if line else f"{path}: "


def unknown_key_message(key: str, category: str | None) -> str | None:
    """None when ``key`` is valid in ``category`` (any category when None), else the reason."""
    owners = {k: c for c, keys in keys_by_category().items() for k in keys}
    base = base_key(key)
    if base in owners:
        if category is None or owners[base] == category:
            return None
        return f"key {base!r} belongs in {owners[base]} files, not {category}"
    close = difflib.get_close_matches(base, list(owners), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see dmlbench/configs/*/default.yaml"
    return f"unknown config key {base!r}{hint}"


def check_file_keys(content: dict[str, Any], category: str, path: str | Path | None = None) -> None:
    """Raise :class:`ConfigError` ("file:line: unknown config key 'x'; did you mean y?") for a
    top-level key of ``content`` that is not a key of ``category`` (or a fixed nested key)."""
    for key, value in content.items():
        problem = unknown_key_message(str(key), category)
        if problem:
            raise ConfigError(f"{_where(path, (str(key),))}{problem}")
        allowed = NESTED_KEYS.get(base_key(key))
        if allowed and isinstance(value, dict):
            for inner in value:
                if base_key(inner) not in allowed:
                    close = difflib.get_close_matches(base_key(inner), allowed, n=1, cutoff=0.5)
                    hint = f"; did you mean {close[0]}?" if close else ""
                    raise ConfigError(
                        f"{_where(path, (str(key), str(inner)))}{base_key(key)}: unknown part "
                        f"{base_key(inner)!r}{hint} (parts: {', '.join(allowed)})"
                    )
