"""A user's own plugins: the one explicit rule by which code outside dmlbench is imported.

Two ways, the same whether dmlbench is installed or run from its repository:

* ``plugin_paths`` in config_general (``--plugin_paths [my_plugins/losses.py, my_pkg]`` on the
  command line): each entry is a ``.py`` file or a package folder (with ``__init__.py``); it is
  imported once, by its location, as ``dmlbench_user.<name>``, so its ``@register`` decorators
  run. Relative paths are resolved against the working directory when the experiment is created
  and saved absolute, so resuming, evaluating and search trials find the same code.
* an installed distribution's entry point in the group ``dmlbench.plugins``
  (:data:`dmlbench.registry.ENTRY_POINT_GROUP`), loaded on the first registry lookup.

Nothing else is imported from the working directory: a ``./plugins`` folder is not a plugin source
unless one of its files or packages is named in ``plugin_paths``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dmlbench.errors import ConfigError

NAMESPACE = "dmlbench_user"
_loaded: dict[Path, str] = {}


def normalise_paths(value: Any) -> list[str]:
    """``plugin_paths`` as absolute path strings (relative ones against the working directory)."""
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"plugin_paths: expected a list of paths to .py files or package folders, got {value!r}"
        )
    return [str(Path(v).expanduser().resolve()) for v in value]


def _module_name(path: Path) -> str:
    stem = re.sub(r"\W", "_", path.stem if path.is_file() else path.name)
    return f"{NAMESPACE}.{stem}"


def load_user_plugins(paths: Iterable[str]) -> list[str]:
    """Import each plugin file or package once; returns the module names. A missing path or a
    folder without ``__init__.py`` is a :class:`ConfigError`."""
    names = []
    for entry in normalise_paths(list(paths)):
        path = Path(entry)
        if path in _loaded:
            names.append(_loaded[path])
            continue
        if path.is_dir():
            init = path / "__init__.py"
            if not init.exists():
                raise ConfigError(
                    f"plugin_paths: {path} is a folder without __init__.py; give a package "
                    "folder or a .py file"
                )
            spec = importlib.util.spec_from_file_location(
                _module_name(path), init, submodule_search_locations=[str(path)]
            )
        elif path.is_file() and path.suffix == ".py":
            spec = importlib.util.spec_from_file_location(_module_name(path), path)
        elif path.exists():
            raise ConfigError(f"plugin_paths: {path} is not a .py file or a package folder")
        else:
            raise ConfigError(f"plugin_paths: {path} does not exist")
        if NAMESPACE not in sys.modules:
            namespace = importlib.util.module_from_spec(
                importlib.machinery.ModuleSpec(NAMESPACE, None, is_package=True)
            )
            namespace.__path__ = []
            sys.modules[NAMESPACE] = namespace
        if spec is None or spec.loader is None:  # not reached for a .py file or a package
            raise ConfigError(f"plugin_paths: {path} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules[spec.name]
            raise
        _loaded[path] = spec.name
        names.append(spec.name)
    return names


def use_user_plugins(config: dict[str, dict[str, Any]]) -> None:
    """Make ``config_general.plugin_paths`` absolute (in place, so the saved config finds the same
    files from anywhere) and import them."""
    general = config.get("config_general", {})
    if general.get("plugin_paths"):
        general["plugin_paths"] = normalise_paths(general["plugin_paths"])
        load_user_plugins(general["plugin_paths"])
