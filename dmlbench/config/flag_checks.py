"""Command-line flags: one-line argparse errors, flags that have no effect in the mode used, and
the ``--splits_to_eval`` forms.

A flag that would be silently ignored is an error: the search flags (``--reproductions``,
``--trial_executor``, ``--max_parallel_trials``, ``--sobol_trials``, ``--trials_per_gpu``) without a
search, ``--evaluate_unfinished`` without ``--evaluate``, ``--merge_argparse_when_resuming`` when there is no
saved or reproduced config to change.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from dmlbench.config.value_checks import SPLITS
from dmlbench.config.yaml_io import parse_value
from dmlbench.errors import ConfigError

#: Search flags and the value that means "not given".
SEARCH_FLAGS: dict[str, Any] = {
    "reproductions": 0,
    "trial_executor": None,
    "max_parallel_trials": None,
    "sobol_trials": None,
    "trials_per_gpu": 1,
}


_FLAG_TOKEN = re.compile(r"^--[A-Za-z_]")


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one :class:`ConfigError` line instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message}; see {self.prog} --help")


def known_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The parser's ``--long`` options, without the dashes."""
    return [
        option[2:]
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    ]


def check_flag_names(unknown: Sequence[str], flags: Sequence[str]) -> None:
    """Every ``--name`` left over by the parser must be a config key or one of powerful-benchmarker's
    (translated later; :mod:`dmlbench.config.pb_vocabulary`) (its top-level key, without
    ``.subkeys``, ``~SUFFIX~`` or ``=value``); otherwise one line with the nearest flags and keys
    ("did you mean --evaluate?"), a hyphen written for an underscore named as such."""
    from dmlbench.config.key_checks import base_key, keys_by_category
    from dmlbench.config.pb_vocabulary import PB_KEYS

    keys = [key for category_keys in keys_by_category().values() for key in category_keys] + list(PB_KEYS)
    for token in unknown:
        if not _FLAG_TOKEN.match(token):
            continue
        written = token[2:].partition("=")[0]
        name = base_key(written.split(".")[0])
        if name in keys:
            continue
        flag_or_key = sorted(set(flags) | set(keys))
        underscored = name.replace("-", "_")
        if underscored in flag_or_key:
            raise ConfigError(
                f"--{name}: unknown flag; did you mean --{underscored}? (flags and config keys are written "
                "with underscores)"
            )
        close = difflib.get_close_matches(underscored, flag_or_key, n=3, cutoff=0.6)
        hint = (
            f"; did you mean {', '.join('--' + c for c in close)}?"
            if close
            else "; see --help for the flags and dmlbench/configs/*/default.yaml for the config keys"
        )
        raise ConfigError(f"--{name}: unknown flag or config key {name!r}{hint}")


def require_search_iterations(parameter_names: list[str], iterations: int | None) -> None:
    """``~BAYESIAN~`` keys need ``--bayes_opt_iters``: one line naming the first key."""
    if parameter_names and iterations is None:
        raise ConfigError(
            f"{parameter_names[0]} is a search range (~BAYESIAN~ key) but --bayes_opt_iters is not "
            "set; add --bayes_opt_iters N to search, or give a concrete value"
        )


def check_mode_flags(args: argparse.Namespace, searching: bool) -> None:
    """Refuse flags that have no effect in the mode ``args`` asks for."""
    if not searching:
        for flag, unset in SEARCH_FLAGS.items():
            if getattr(args, flag, unset) != unset:
                raise ConfigError(
                    f"--{flag} has no effect without a search (--bayes_opt_iters N and a "
                    "~BAYESIAN~ key); remove it"
                )
    evaluating = bool(args.evaluate or args.evaluate_ensemble)
    if getattr(args, "evaluate_unfinished", False) and not evaluating:
        raise ConfigError("--evaluate_unfinished only applies with --evaluate or --evaluate_ensemble")
    if args.merge_argparse_when_resuming and not (
        args.resume_training or evaluating or args.reproduce_results
    ):
        raise ConfigError(
            "--merge_argparse_when_resuming has no effect without --resume_training, --evaluate or "
            "--reproduce_results (there is no saved config to change); remove it"
        )


def parse_splits_to_eval(values: Sequence[str] | None) -> list[str]:
    """``--splits_to_eval [val, test]``, ``--splits_to_eval val test`` (argparse's usage form) and
    ``--splits_to_eval test`` -> a list of known split names (default ``[test]``). With --evaluate
    they are the splits tested; when training, the splits scored at each validation (the config
    key ``splits_to_eval``, as in powerful-benchmarker)."""
    if not values:
        return ["test"]
    text = " ".join(values).strip()
    if text.startswith("["):
        parsed = parse_value(text, "--splits_to_eval")
        splits = parsed if isinstance(parsed, list) else [parsed]
    else:
        splits = text.replace(",", " ").split()
    unknown = [split for split in splits if split not in SPLITS]
    if not splits or unknown:
        raise ConfigError(
            f"--splits_to_eval: {unknown[0] if unknown else 'nothing'!r} is not a split; "
            f"choose from {', '.join(SPLITS)}, e.g. --splits_to_eval val test"
        )
    return [str(split) for split in splits]
