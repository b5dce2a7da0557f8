"""Config overrides from the command line, in powerful-benchmarker's syntax.

Each ``--key value`` pair becomes ``{key: value}`` with the value parsed as YAML, so every
suffix of :mod:`dmlbench.config.merge` works on the command line too::

    --eval_batch_size 64                               {eval_batch_size: 64}
    --split_manager~SWAP~1 {MLRCSplitManager: {}}      {split_manager~SWAP~1: {MLRCSplitManager: {}}}
    --loss_funcs~OVERRIDE~ {metric_loss: {MultiSimilarityLoss: {alpha: 2}}}

Unquoted YAML gets split on spaces by the shell, so a value is every token up to the next
token that starts with ``--`` and a letter, joined with spaces. ``--key=value`` also works.
Dots in a key build nesting (a dmlbench convenience)::

    --optimizers.trunk_optimizer.RMSprop.lr 1e-5       {optimizers: {trunk_optimizer: {RMSprop: {lr: 1.0e-05}}}}

Flags are combined in order: a later flag acts after an earlier one, also when the same flag
is repeated (powerful-benchmarker kept only its last value; see
:func:`dmlbench.config.merge.combine_overrides`).
"""

from __future__ import annotations

import re
from typing import Any

from dmlbench.config.keys import parse_key
from dmlbench.config.merge import combine_overrides
from dmlbench.config.yaml_io import parse_value
from dmlbench.errors import ConfigError

_FLAG = re.compile(r"^--[A-Za-z_]")


def _split_flags(args: list[str]) -> list[tuple[str, list[str]]]:
    """``["--a", "1", "--b", "{x:", "2}"]`` -> ``[("--a", ["1"]), ("--b", ["{x:", "2}"])]``."""
    groups: list[tuple[str, list[str]]] = []
    for token in args:
        if _FLAG.match(token):
            flag, equals, rest = token.partition("=")
            groups.append((flag, [rest] if equals else []))
        elif groups:
            groups[-1][1].append(token)
        else:
            raise ConfigError(f"command line: {token!r} has no --flag in front of it (write --name value)")
    return groups


def _nest(flag: str, value: Any) -> dict:
    """``"--a.b~OVERRIDE~.c"`` and ``v`` -> ``{"a": {"b~OVERRIDE~": {"c": v}}}``."""
    parts = flag[2:].split(".")
    if any(not part for part in parts):
        raise ConfigError(f"{flag}: empty key between dots; write e.g. --optimizers.trunk_optimizer")
    for index, part in enumerate(parts):
        parse_key(part, tuple(parts[:index]))  # unknown suffixes fail here, naming the flag
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


def parse_overrides(args: list[str]) -> dict:
    """Turn leftover argv into one override mapping (flags combined in order).

    Raises :class:`ConfigError` for a flag without a value, a value that is not YAML, a stray
    value without a flag, or an unknown ``~SUFFIX~``.
    """
    combined: dict = {}
    for flag, tokens in _split_flags(list(args)):
        if not tokens or not " ".join(tokens).strip():
            raise ConfigError(f"{flag}: no value given; write e.g. '{flag} 64' or '{flag} {{Class: {{}}}}'")
        value = parse_value(" ".join(tokens), flag)
        try:
            combined = combine_overrides(combined, _nest(flag, value))
        except ConfigError as error:
            if flag in str(error):
                raise
            raise ConfigError(f"{flag}: {error}") from error
    return combined
