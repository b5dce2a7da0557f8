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

Code runs only with the user's consent given on the command line. ``plugin_paths`` read from a
config file (a ``--root_config_folder`` file, an exp_config given to ``--reproduce_results``, the
saved configs of an experiment folder that is resumed, evaluated or received from someone else)
is refused unless the command line names the same paths (``--plugin_paths [...]``) or passes
``--trust_plugin_paths``. A search's jobs import what their search's command consented to.
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
_consented: set[str] = set()
_trust_all = False
#: The keys by which a command line sets plugin_paths.
CONSENT_KEYS = ("plugin_paths", "plugin_paths~OVERRIDE~")


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


def add_consent_flags(parser: Any) -> None:
    """``--plugin_paths PATH ...`` and ``--trust_plugin_paths`` for the tools that open a trained
    experiment folder (``python -m dmlbench.report``, ``dmlbench.explain``)."""
    parser.add_argument(
        "--plugin_paths",
        nargs="+",
        default=[],
        metavar="PATH",
        help="plugin files the folder's config imports",
    )
    parser.add_argument(
        "--trust_plugin_paths", action="store_true", help="import every plugin_paths of the folder's config"
    )


def grant_from_flags(args: Any) -> None:
    """The consent given by :func:`add_consent_flags`' flags."""
    global _trust_all
    grant(args.plugin_paths)
    _trust_all = _trust_all or bool(args.trust_plugin_paths)


def grant(paths: Iterable[str]) -> None:
    """The user consents to importing ``paths`` (named on the command line, or the paths of a job
    whose search had consent)."""
    _consented.update(normalise_paths(list(paths)))


def named_on_command_line(overrides: dict[str, Any]) -> list[str] | None:
    """The plugin paths a command line's overrides name (absolute), or None when it names none."""
    for key in CONSENT_KEYS:
        if key in overrides:
            return normalise_paths(overrides[key])
    return None


def consent_without_change(overrides: dict[str, Any], merging: bool) -> bool:
    """When continuing or reproducing without ``--merge_argparse_when_resuming``, ``--plugin_paths``
    consents to the saved config's plugins instead of changing them: taken out of ``overrides``
    (-> whether it was there)."""
    if merging:
        return False
    return any(overrides.pop(key, None) is not None for key in CONSENT_KEYS)


def check_consent_matches(config: dict[str, dict[str, Any]], named: list[str] | None) -> None:
    """``--plugin_paths`` given as consent must name exactly the saved config's plugin paths."""
    paths = normalise_paths(config.get("config_general", {}).get("plugin_paths"))
    if sorted(paths) != sorted(named or []):
        raise ConfigError(
            f"--plugin_paths: the saved config imports [{', '.join(paths)}]; name exactly those to "
            "consent, or add --merge_argparse_when_resuming to change them"
        )


def require_consent(config: dict[str, dict[str, Any]], named: list[str] | None, trusted: bool) -> None:
    """Every ``plugin_paths`` entry of ``config`` must be named on the command line (``named``)
    unless ``trusted`` (``--trust_plugin_paths``); then they may be imported."""
    paths = normalise_paths(config.get("config_general", {}).get("plugin_paths"))
    if not trusted:
        unnamed = [path for path in paths if path not in (named or [])]
        if unnamed:
            raise ConfigError(
                f"plugin_paths: {unnamed[0]} comes from a config file, and dmlbench imports code only when "
                f"the command line asks: add --plugin_paths [{', '.join(paths)}] to import it "
                "(or --trust_plugin_paths for every plugin_paths of the configs)"
            )
    grant(paths)


def load_user_plugins(paths: Iterable[str]) -> list[str]:
    """Import each plugin file or package once; returns the module names. A path without the user's
    consent (:func:`grant`), a missing path or a folder without ``__init__.py`` is a
    :class:`ConfigError`, and so is a plugin that raises or exits while it is imported."""
    names = []
    for entry in normalise_paths(list(paths)):
        if entry not in _consented and not _trust_all:
            raise ConfigError(
                f"plugin_paths: {entry} is not named on the command line; dmlbench imports code only "
                "when the command line asks (--plugin_paths [...] or --trust_plugin_paths)"
            )
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
        except (Exception, SystemExit) as error:
            del sys.modules[spec.name]
            if isinstance(error, SystemExit):  # a plugin ending the process is a failed import
                raise ConfigError(
                    f"plugin_paths: importing {path} called sys.exit({error.code!r}); a plugin file must "
                    "only define and register classes"
                ) from None
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
