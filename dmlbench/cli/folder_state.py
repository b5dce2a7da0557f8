"""What a command does with its experiment folder: start it, start a half-made start again,
continue it (--resume_training, --evaluate) or refuse; and the config it starts from."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmlbench.cli.config_assembly import default_configs, reproduced_configs
from dmlbench.config.exp_config_lookup import find_exp_config
from dmlbench.config.experiment_files import configs_complete, load_saved_configs
from dmlbench.errors import ConfigError, ExperimentError
from dmlbench.run_guard import (
    check_experiment_name,
    clear_folder,
    has_checkpoints,
    holds_files,
    is_partial_start,
    lock_experiment_folder,
)


@dataclass
class FolderState:
    """The experiment folder of a command: whether it holds something, whether the command
    continues it (resume or evaluate)."""

    experiment_dir: Path
    existing: bool
    continuing: bool


def experiment_dir_for(args: argparse.Namespace) -> Path:
    name = args.experiment_name
    if not name and args.reproduce_results:
        name = find_exp_config(args.reproduce_results).resolve().name
    if not name:
        raise ConfigError(
            "--experiment_name is required (or --reproduce_results DIR, which names it after DIR)"
        )
    return Path(args.root_experiment_folder) / check_experiment_name(name)


def is_continuing(args: argparse.Namespace) -> bool:
    """Whether the command continues a folder (--resume_training, --evaluate, --evaluate_ensemble)."""
    return bool(args.resume_training or args.evaluate or args.evaluate_ensemble)


def folder_state(args: argparse.Namespace) -> FolderState:
    """The folder's state; a new start's folder left by a start that never reached a checkpoint
    is removed (the command starts it again)."""
    experiment_dir = experiment_dir_for(args)
    continuing = is_continuing(args)
    lock_experiment_folder(experiment_dir, continuing)  # one writer per folder, held to the end
    existing = holds_files(experiment_dir)
    if existing and not continuing and args.bayes_opt_iters is None and is_partial_start(experiment_dir):
        print(
            f"note: {experiment_dir} holds a start that never reached a checkpoint; starting it again",
            file=sys.stderr,
        )
        clear_folder(experiment_dir)
        existing = False
    return FolderState(experiment_dir, existing, continuing)


def starting_config(
    args: argparse.Namespace, state: FolderState, overrides: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The config before overrides: the saved one when continuing, else the reproduced or default
    one; refuses what the folder's state does not allow."""
    experiment_dir = state.experiment_dir
    if state.continuing:
        if not state.existing:
            raise ExperimentError(f"{experiment_dir} does not exist: nothing to resume or evaluate")
        if (
            not configs_complete(experiment_dir)
            and not has_checkpoints(experiment_dir)
            and not (experiment_dir / "trials").exists()
        ):
            raise ExperimentError(
                f"{experiment_dir} was stopped before its config was completely saved (nothing "
                "was trained): rerun the original command, which starts it again"
            )
        config = load_saved_configs(experiment_dir)
        if overrides and not args.merge_argparse_when_resuming:
            raise ConfigError(
                f"{experiment_dir} has a saved config; add --merge_argparse_when_resuming to change "
                f"it with {', '.join('--' + k for k in overrides)}"
            )
        return config
    if state.existing and args.bayes_opt_iters is None:
        raise ExperimentError(
            f"{experiment_dir} already holds an experiment; continue it with --resume_training latest, "
            "evaluate it with --evaluate, or choose another --experiment_name"
        )
    if not args.reproduce_results:
        return default_configs(args)
    config = reproduced_configs(args)
    if overrides and not args.merge_argparse_when_resuming:
        raise ConfigError(
            "--reproduce_results takes its config from DIR; add --merge_argparse_when_resuming "
            f"to change it with {', '.join('--' + k for k in overrides)}"
        )
    return config
