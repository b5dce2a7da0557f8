"""One command, start to end: parse, the folder's state and config, then a search or one
experiment (trained, resumed or evaluated), with nothing half-made left behind on an error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dmlbench.cli.config_assembly import apply_overrides, check_root_config_folder, print_notices
from dmlbench.cli.folder_state import (
    FolderState,
    experiment_dir_for,
    folder_state,
    is_continuing,
    starting_config,
)
from dmlbench.cli.parse import build_parser
from dmlbench.config.experiment_files import (
    flatten_config,
    is_search_folder,
    record_command_line,
    save_configs,
)
from dmlbench.config.flag_checks import (
    check_flag_names,
    check_mode_flags,
    known_flags,
    parse_splits_to_eval,
    require_search_iterations,
)
from dmlbench.config.merge import combine_overrides
from dmlbench.config.overrides import parse_overrides
from dmlbench.config.pb_values import translate_values
from dmlbench.config.pb_vocabulary import translate_fragment
from dmlbench.config.yaml_io import dump_yaml
from dmlbench.errors import ExperimentError
from dmlbench.integrity import remove_stale_temp_files
from dmlbench.run_guard import EXIT_INTERRUPTED, clear_folder, has_checkpoints, holds_files, resume_command
from dmlbench.search.space import find_search_parameters
from dmlbench.user_plugins import (
    check_consent_matches,
    consent_without_change,
    named_on_command_line,
    require_consent,
    use_user_plugins,
)


def run(argv: list[str], failure: dict[str, Any] | None = None) -> int:
    """Run one command line; ``failure`` receives what to tell the user if it raises (the folder
    kept, the command that resumes it)."""
    failure = {} if failure is None else failure
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    check_flag_names(unknown, known_flags(parser))  # a mistyped flag: "did you mean", before anything else
    overrides, notices = translate_fragment(parse_overrides(unknown), "command line")
    splits = parse_splits_to_eval(args.splits_to_eval)  # a bad split name fails before anything is read
    if args.splits_to_eval and not (args.evaluate or args.evaluate_ensemble):
        # as in powerful-benchmarker: the splits scored at each validation during training
        overrides = combine_overrides(overrides, {"splits_to_eval~OVERRIDE~": splits})
    check_root_config_folder(args)
    if args.estimate:  # before the folder is locked or made: --estimate writes nothing
        from dmlbench.cli.estimating import estimate

        return estimate(args, overrides)
    if args.dry_run:  # nor does --dry_run
        return dry_run(args, overrides, notices)
    state = folder_state(args)
    config = resolved_config(args, state, overrides, notices)

    search_parameters = find_search_parameters(flatten_config(config))
    check_mode_flags(args, searching=bool(search_parameters) or args.bayes_opt_iters is not None)
    # torch, torchvision and the registry are imported only from here on: --help and the errors
    # above answer in a fraction of a second (bench/startup_bench.py)
    from dmlbench.data.roots import default_dataset_root

    args.dataset_root = args.dataset_root or default_dataset_root()
    if search_parameters or args.bayes_opt_iters is not None:
        experiment_dir = state.experiment_dir
        if state.continuing and is_search_folder(experiment_dir):
            raise ExperimentError(
                f"{experiment_dir} is a hyperparameter search: rerun its command to continue it (tests and "
                f"reproductions of the best trial are in {experiment_dir / 'meta' / 'report.md'}), or evaluate one "
                f"trial with --root_experiment_folder {experiment_dir / 'trials'} --experiment_name trial_NNNN"
            )
        require_search_iterations([p.name for p in search_parameters], args.bayes_opt_iters)
        from dmlbench.search import run_search  # imported only for searches (pulls in Ax)

        return run_search(args, config, experiment_dir, argv)
    return run_experiment(args, config, state, argv, overrides, failure)


def resolved_config(
    args: argparse.Namespace, state: FolderState, overrides: dict[str, Any], notices: list[str]
) -> dict[str, dict[str, Any]]:
    """The config the command runs: files (translated from powerful-benchmarker's vocabulary where
    it is used, one note each on stderr), then the command line's overrides."""
    named = named_on_command_line(overrides)  # plugin paths the user consents to import
    from_saved = state.continuing or bool(args.reproduce_results)
    # naming the saved config's plugins is consent, not a change of the config
    consent_only = from_saved and consent_without_change(overrides, args.merge_argparse_when_resuming)
    config = starting_config(args, state, overrides)
    if overrides:
        config = apply_overrides(config, overrides)
    print_notices(notices + translate_values(config))
    if consent_only:
        check_consent_matches(config, named)
    require_consent(config, named, args.trust_plugin_paths)
    use_user_plugins(config)
    return config


def dry_run(args: argparse.Namespace, overrides: dict[str, Any], notices: list[str]) -> int:
    """``--dry_run``: resolve and check everything a start would (no data set is read), print the
    config as one YAML document ``{config_<category>: {...}}`` (a search: with its ranges); the
    experiment folder is neither created nor locked nor changed."""
    from dmlbench.config.checks import validate_config

    experiment_dir = experiment_dir_for(args)
    state = FolderState(experiment_dir, holds_files(experiment_dir), is_continuing(args))
    config = resolved_config(args, state, overrides, notices)
    flat = flatten_config(config)
    searching = bool(find_search_parameters(flat)) or args.bayes_opt_iters is not None
    check_mode_flags(args, searching=searching)
    if not searching:
        validate_config(flat)
    sys.stdout.write(dump_yaml(config))
    return 0


def run_experiment(
    args: argparse.Namespace,
    config: dict[str, dict[str, Any]],
    state: FolderState,
    argv: list[str],
    overrides: dict[str, Any],
    failure: dict[str, Any],
) -> int:
    """Train (or resume, or evaluate) one experiment; on an error before the first checkpoint the
    folder it created is removed."""
    from dmlbench.config.checks import validate_config
    from dmlbench.config.value_checks import check_pretrained_models
    from dmlbench.runner import Experiment

    experiment_dir, existing, continuing = state.experiment_dir, state.existing, state.continuing
    validate_config(flatten_config(config))
    if existing:
        remove_stale_temp_files(experiment_dir)
    experiment = Experiment(config, experiment_dir, Path(args.dataset_root))
    try:
        if args.evaluate or args.evaluate_ensemble:
            splits = parse_splits_to_eval(args.splits_to_eval)
            record_command_line(
                experiment_dir, argv, overrides=overrides if args.merge_argparse_when_resuming else None
            )
            experiment.evaluate(
                list(splits), ensemble=args.evaluate_ensemble, allow_unfinished=args.evaluate_unfinished
            )
            return 0
        experiment.dataset  # noqa: B018 - a missing data set fails here, before anything is written
        save_configs(config, experiment.config_dir)  # complete configs before the split manifest
        experiment.folds  # noqa: B018 - builds and checks the split before training
        check_pretrained_models(experiment.settings)  # weights on disk, before training starts
        record_command_line(experiment_dir, argv, overrides=overrides if continuing else None)
        experiment.run(resume=bool(args.resume_training), resume_from=args.resume_training or "latest")
        return 0
    except BaseException as error:
        if not existing and not has_checkpoints(experiment_dir):
            # nothing half-made is left behind by an error before the first checkpoint; the lock's
            # release removes the folders this command made (a link or a folder made before stays)
            clear_folder(experiment_dir)
        kept = experiment_dir if experiment_dir.exists() and has_checkpoints(experiment_dir) else None
        resume = resume_command(args, experiment_dir, experiment.settings.get("plugin_paths"))
        if not isinstance(error, KeyboardInterrupt):
            if not (args.evaluate or args.evaluate_ensemble):
                failure.update(kept=kept, resume=resume)
            raise
        if kept is None:
            print(
                "\ninterrupted before the first checkpoint; nothing was kept: rerun the same command",
                file=sys.stderr,
            )
        else:
            print(
                f"\ninterrupted; continue with: {resume}",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
