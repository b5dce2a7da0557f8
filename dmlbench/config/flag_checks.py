"""Command-line flags: one-line argparse errors, flags that have no effect in the mode used, and
the ``--splits_to_eval`` forms.

A flag that would be silently ignored is an error: the search flags (``--reproductions``,
``--trial_executor``, ``--max_parallel_trials``, ``--sobol_trials``, ``--trials_per_gpu``) without a
search, ``--splits_to_eval`` and ``--evaluate_unfinished`` without ``--evaluate``, ``--merge_argparse_when_resuming`` when there is no
saved or reproduced config to change.
"""

from __future__ import annotations

import argparse
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


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one :class:`ConfigError` line instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message}; see {self.prog} --help")


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
    if args.splits_to_eval and not evaluating:
        raise ConfigError(
            "--splits_to_eval only applies with --evaluate; the splits validated during training "
            "are the config key, e.g. --splits_to_eval~OVERRIDE~ [val]"
        )
    if args.merge_argparse_when_resuming and not (
        args.resume_training or evaluating or args.reproduce_results
    ):
        raise ConfigError(
            "--merge_argparse_when_resuming has no effect without --resume_training, --evaluate or "
            "--reproduce_results (there is no saved config to change); remove it"
        )


def parse_splits_to_eval(values: Sequence[str] | None) -> list[str]:
    """``--splits_to_eval [val, test]``, ``--splits_to_eval val test`` (argparse's usage form) and
    ``--splits_to_eval test`` -> a list of known split names (default ``[test]``)."""
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
