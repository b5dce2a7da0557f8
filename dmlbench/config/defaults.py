"""The built-in defaults: the ``default.yaml`` of each config category, and nothing else.

Code that reads a setting a config may leave out takes its default from here, so that a
default is written in one place (``dmlbench/configs/<category>/default.yaml``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from dmlbench.config.keys import CATEGORIES
from dmlbench.config.yaml_io import load_yaml_file

BUILTIN_CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@functools.lru_cache(maxsize=1)
def builtin_defaults() -> dict[str, Any]:
    """Every category's ``default.yaml`` merged into one flat dict (their keys are disjoint)."""
    flat: dict[str, Any] = {}
    for category in CATEGORIES:
        path = BUILTIN_CONFIG_DIR / category / "default.yaml"
        if path.exists():
            flat.update(load_yaml_file(path) or {})
    return flat


def setting(settings: dict[str, Any], key: str) -> Any:
    """``settings[key]``, or the built-in default when the config leaves ``key`` out."""
    if key in settings:
        return settings[key]
    defaults = builtin_defaults()
    if key not in defaults:
        raise KeyError(f"{key!r} has no built-in default (add it to a dmlbench/configs/*/default.yaml)")
    return defaults[key]
