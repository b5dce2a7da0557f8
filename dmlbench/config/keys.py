"""Config keys and their suffixes: ``name~OVERRIDE~``, ``name~APPLY~N``, ``name~SWAP~N``,
``name~DELETE~`` / ``~REMOVE~`` and the search-space markers, parsed into a :class:`KeySpec`
(the semantics of each are described in :mod:`dmlbench.config.merge`)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from dmlbench.errors import ConfigError

#: The config categories, in merge and save order (one folder and one file of each per experiment).
CATEGORIES = (
    "config_general",
    "config_models",
    "config_loss_and_miners",
    "config_optimizers",
    "config_transforms",
    "config_eval",
    "config_dataset",
    "config_factories",
)
#: Search-space suffix -> parameter kind.
SEARCH_SUFFIXES: dict[str, str] = {
    "~BAYESIAN~": "float",
    "~LOG_BAYESIAN~": "log_float",
    "~INT_BAYESIAN~": "int",
    "~CHOICE~": "choice",
}
DELETE_MARKERS = ("~DELETE~", "~REMOVE~")
VALID_SUFFIXES = ("~OVERRIDE~", "~APPLY~N", "~SWAP~N", *DELETE_MARKERS, *SEARCH_SUFFIXES)

_SUFFIX = re.compile(r"^(?P<name>.*)~(?P<word>[A-Za-z_]*)~(?P<depth>[0-9]*)$")
_ANY_SUFFIX = re.compile(r"~[A-Za-z_]*~[0-9]*")
_WORD_KIND = {
    "OVERRIDE": "override",
    "APPLY": "apply",
    "SWAP": "swap",
    "DELETE": "delete",
    "REMOVE": "delete",
}
_WORD_KIND.update({suffix.strip("~"): "search" for suffix in SEARCH_SUFFIXES})


@dataclass(frozen=True)
class KeySpec:
    """A config key split into its base ``name`` and what its suffix asks for.

    ``kind`` is one of "plain", "override", "apply", "swap", "delete", "search";
    ``depth`` is N of ``~APPLY~N``/``~SWAP~N``; ``suffix`` is the suffix text ("" if none).
    """

    name: Hashable
    kind: str
    depth: int = 0
    suffix: str = ""


def dotted(path: tuple, key: Any = None) -> str:
    """``("a", "b"), "c"`` -> ``"a.b.c"`` (for error messages)."""
    parts = [str(part) for part in path] + ([] if key is None else [str(key)])
    return ".".join(parts) if parts else "<top level>"


def parse_key(key: Hashable, path: tuple = ()) -> KeySpec:
    """Split a key into name and suffix; an unknown or malformed suffix is a ConfigError."""
    if not isinstance(key, str):
        return KeySpec(key, "plain")
    match = _SUFFIX.match(key)
    if match is None:
        return KeySpec(key, "plain")
    name, word, depth_text = match["name"], match["word"], match["depth"]
    where = dotted(path, key)
    kind = _WORD_KIND.get(word)
    if kind is None:
        guess = difflib.get_close_matches(word.upper(), list(_WORD_KIND), n=1, cutoff=0.5)
        hint = f" (did you mean ~{guess[0]}~?)" if guess else ""
        raise ConfigError(
            f"unknown suffix '~{word}~' in key '{where}'{hint}; valid suffixes: {', '.join(VALID_SUFFIXES)}"
        )
    if _ANY_SUFFIX.search(name):
        raise ConfigError(f"key '{where}' has more than one ~SUFFIX~; use one per key")
    if not name:
        raise ConfigError(f"key '{where}' has a suffix but no name before it")
    if kind in ("apply", "swap"):
        if not depth_text or int(depth_text) < 1:
            raise ConfigError(
                f"key '{where}': ~{word}~ needs a depth of 1 or more after it, e.g. '{name}~{word}~1'"
            )
        return KeySpec(name, kind, int(depth_text), f"~{word}~{depth_text}")
    if depth_text:
        raise ConfigError(f"key '{where}': ~{word}~ takes no number; write '{name}~{word}~'")
    return KeySpec(name, kind, 0, f"~{word}~")


def is_delete_marker(value: Any) -> bool:
    """True for the value form of a deletion (``key: ~DELETE~`` / ``key: ~REMOVE~``)."""
    return isinstance(value, str) and value in DELETE_MARKERS


def effective_spec(key: Hashable, value: Any, path: tuple = ()) -> KeySpec:
    """Like :func:`parse_key`, but a plain or override key whose value is a delete marker
    counts as a deletion."""
    spec = parse_key(key, path)
    if spec.kind in ("plain", "override") and is_delete_marker(value):
        return KeySpec(spec.name, "delete", 0, spec.suffix)
    return spec
