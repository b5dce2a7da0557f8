"""Command line: known flags, config assembly from category files + overrides, and dispatch.

    python run.py --experiment_name NAME [--config_X [default, with_cars196]] [--key value ...]
    python run.py --reproduce_results exp_configs/demo
    python run.py --experiment_name NAME --resume_training latest
    python run.py --experiment_name NAME --evaluate --evaluate_ensemble --splits_to_eval [test]

Every ``--key value`` that is not a known flag overrides the config (values are YAML; key
suffixes ``~OVERRIDE~``, ``~APPLY~N``, ``~SWAP~N``, ``~DELETE~``/``~REMOVE~`` work as in
powerful-benchmarker). Problems with the input print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmlbench.config.checks import validate_config
from dmlbench.config.exp_config_lookup import find_exp_config
from dmlbench.config.experiment_files import (
    configs_complete,
    flatten_config,
    is_saved_experiment,
    load_saved_configs,
    read_category_files,
    record_command_line,
    save_configs,
)
from dmlbench.config.files import CATEGORIES, exp_config_file_lists, load_category, parse_file_list
from dmlbench.config.flag_checks import OneLineArgumentParser, check_mode_flags, parse_splits_to_eval
from dmlbench.config.merge import merge_configs
from dmlbench.config.overrides import parse_overrides
from dmlbench.config.value_checks import check_pretrained_models
from dmlbench.data.roots import default_dataset_root
from dmlbench.errors import ConfigError, ExperimentError
from dmlbench.integrity import remove_stale_temp_files
from dmlbench.run_guard import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    check_experiment_name,
    debug_enabled,
    has_checkpoints,
    is_partial_start,
    report_failure,
    resume_command,
    sigterm_as_interrupt,
)
from dmlbench.runner import Experiment
from dmlbench.search.space import find_search_parameters
from dmlbench.user_plugins import use_user_plugins

BUILTIN_CONFIG_DIR = Path(__file__).parent / "configs"
SUFFIX_MARK = "~"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python run.py" if Path(sys.argv[0]).name == "run.py" else "dmlbench",
        description="dmlbench: deep metric learning experiments under the MLRC protocol.",
        allow_abbrev=False,
        epilog="Any other --key value overrides the config, e.g. --batch_size 64 "
        "--loss_funcs~OVERRIDE~ {metric_loss: {MultiSimilarityLoss: {alpha: 2}}}",
    )
    parser.add_argument("--experiment_name", help="folder name under --root_experiment_folder")
    parser.add_argument(
        "--root_experiment_folder", default="logs", help="where experiments live (default: logs)"
    )
    parser.add_argument(
        "--dataset_root",
        help="folder holding the data sets (default: datasets, or data if "
        "only that exists, as powerful-benchmarker's READMEs have it)",
    )
    parser.add_argument(
        "--root_config_folder", help="extra folder of config_*/NAME.yaml files, searched first"
    )
    parser.add_argument(
        "--reproduce_results",
        metavar="DIR",
        help="rebuild an experiment from DIR/configs (an exp_configs/ entry or a saved experiment)",
    )
    parser.add_argument(
        "--resume_training",
        choices=["latest", "best"],
        help="continue a stopped run from its latest (or best) checkpoints",
    )
    parser.add_argument(
        "--merge_argparse_when_resuming",
        action="store_true",
        help="apply this command line's config overrides to a saved/reproduced config",
    )
    parser.add_argument("--evaluate", action="store_true", help="test the saved fold models, no training")
    parser.add_argument(
        "--evaluate_ensemble", action="store_true", help="also test the concatenated ensemble"
    )
    parser.add_argument(
        "--evaluate_unfinished",
        action="store_true",
        help="let --evaluate test folds whose training has not finished (their best checkpoint so far)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an unexpected error (also DMLBENCH_DEBUG=1)",
    )
    parser.add_argument(
        "--splits_to_eval", nargs="+", help="splits for --evaluate, e.g. [test] or [val, test]"
    )
    parser.add_argument(
        "--bayes_opt_iters", type=int, help="Bayesian optimisation trials over ~BAYESIAN~ keys"
    )
    parser.add_argument(
        "--reproductions", type=int, default=0, help="retrain the best trial N times and test"
    )
    parser.add_argument("--trial_executor", help="local (default) | local_parallel | slurm (searches)")
    parser.add_argument(
        "--max_parallel_trials",
        type=int,
        help="trials at once for local_parallel (default: one per GPU, 2 on CPU) or slurm",
    )
    parser.add_argument(
        "--trials_per_gpu",
        type=int,
        default=1,
        help="local_parallel: trials sharing each GPU (small trials leave a GPU idle; default 1)",
    )
    parser.add_argument(
        "--sobol_trials",
        type=int,
        help="quasi-random trials before Bayesian optimisation (default: iters // 2, 1 to 5)",
    )
    for category in CATEGORIES:
        parser.add_argument(
            f"--{category}",
            nargs="+",
            metavar="NAME",
            help=f"{category} files merged in order, e.g. [default, with_cars196]",
        )
    return parser


def _config_dirs(args: argparse.Namespace) -> list[Path]:
    dirs = [Path(args.root_config_folder)] if args.root_config_folder else []
    return dirs + [BUILTIN_CONFIG_DIR]


def default_configs(
    args: argparse.Namespace, file_lists: dict[str, list[str]] | None = None
) -> dict[str, dict[str, Any]]:
    """Each category from its file list on the command line, else from ``file_lists`` (an
    exp_config's ``config_files.yaml``), else [default]."""
    config = {}
    for category in CATEGORIES:
        value = getattr(args, category)
        fallback = (file_lists or {}).get(category, ["default"])
        names = parse_file_list(" ".join(value), f"--{category}") if value else fallback
        config[category] = load_category(category, names, _config_dirs(args), check_keys=True)
    return config


def reproduced_configs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``--reproduce_results DIR``: a saved experiment's categories replace the defaults; an
    exp_configs/ entry's files are merged over them (they hold only what differs), starting from
    the file lists of its ``config_files.yaml`` where the command line gives none."""
    directory = find_exp_config(args.reproduce_results)
    saved = is_saved_experiment(directory)
    config = default_configs(args, None if saved else exp_config_file_lists(directory / "configs"))
    for category, content in read_category_files(directory).items():
        config[category] = content if saved else merge_configs(config[category], content)
    return config


def _override_base_key(key: str) -> str:
    return key.split(".", 1)[0].split(SUFFIX_MARK, 1)[0]


def apply_overrides(
    config: dict[str, dict[str, Any]], overrides: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Merge each command-line override into the category that owns its top-level key."""
    config = {category: dict(values) for category, values in config.items()}
    owners = {key: category for category, values in config.items() for key in values}
    for key, value in overrides.items():
        base = _override_base_key(key)
        category = owners.get(base)
        if category is None:
            close = difflib.get_close_matches(base, list(owners), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join('--' + c for c in close)}?" if close else ""
            raise ConfigError(f"--{key}: unknown config key {base!r}{hint} (see {BUILTIN_CONFIG_DIR})")
        config[category] = merge_configs(config[category], {key: value})
    return config


def experiment_dir_for(args: argparse.Namespace) -> Path:
    name = args.experiment_name
    if not name and args.reproduce_results:
        name = find_exp_config(args.reproduce_results).resolve().name
    if not name:
        raise ConfigError(
            "--experiment_name is required (or --reproduce_results DIR, which names it after DIR)"
        )
    return Path(args.root_experiment_folder) / check_experiment_name(name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; one line on stderr for any error (exit 2 for bad input, 1 otherwise,
    130 after Ctrl-C, 143 after SIGTERM); the traceback only with --debug / DMLBENCH_DEBUG=1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_enabled(argv)
    failure: dict[str, Any] = {}
    code = 1
    with sigterm_as_interrupt() as signals:
        try:
            code = run(argv, failure)
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            code = EXIT_INTERRUPTED
        except Exception as error:
            if debug:
                raise
            return report_failure(error, debug, failure.get("kept"), failure.get("resume"))
        finally:
            leave_process_group(finished=code == 0)
    return EXIT_TERMINATED if signals["terminated"] and code == EXIT_INTERRUPTED else code


def leave_process_group(finished: bool) -> None:
    """Under torchrun: leave the process group (after waiting for every rank when all finished)."""
    if "torch.distributed" in sys.modules:  # never imports torch for a command that did not
        from dmlbench.training import distributed

        distributed.shutdown(finished)


def run(argv: list[str], failure: dict[str, Any] | None = None) -> int:
    failure = {} if failure is None else failure
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    args.dataset_root = args.dataset_root or default_dataset_root()
    overrides = parse_overrides(unknown)
    parse_splits_to_eval(args.splits_to_eval)  # a bad split name fails before anything is read
    experiment_dir = experiment_dir_for(args)
    existing = experiment_dir.exists() and any(experiment_dir.iterdir())
    continuing = bool(args.resume_training or args.evaluate or args.evaluate_ensemble)
    if existing and not continuing and args.bayes_opt_iters is None and is_partial_start(experiment_dir):
        print(
            f"note: {experiment_dir} holds a start that never reached a checkpoint; starting it again",
            file=sys.stderr,
        )
        shutil.rmtree(experiment_dir)
        existing = False

    if continuing:
        if not existing:
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
    else:
        if existing and args.bayes_opt_iters is None:
            raise ExperimentError(
                f"{experiment_dir} already holds an experiment; continue it with --resume_training latest, "
                "evaluate it with --evaluate, or choose another --experiment_name"
            )
        if args.reproduce_results:
            config = reproduced_configs(args)
            if overrides and not args.merge_argparse_when_resuming:
                raise ConfigError(
                    "--reproduce_results takes its config from DIR; add --merge_argparse_when_resuming "
                    f"to change it with {', '.join('--' + k for k in overrides)}"
                )
        else:
            config = default_configs(args)
    if overrides:
        config = apply_overrides(config, overrides)
    use_user_plugins(config)

    search_parameters = find_search_parameters(flatten_config(config))
    check_mode_flags(args, searching=bool(search_parameters) or args.bayes_opt_iters is not None)
    if search_parameters or args.bayes_opt_iters is not None:
        if continuing and (experiment_dir / "trials" / "search.json").exists():
            raise ExperimentError(
                f"{experiment_dir} is a hyperparameter search: rerun its command to continue it (tests and "
                f"reproductions of the best trial are in {experiment_dir / 'meta' / 'report.md'}), or evaluate one "
                f"trial with --root_experiment_folder {experiment_dir / 'trials'} --experiment_name trial_NNNN"
            )
        if args.bayes_opt_iters is None:
            raise ConfigError(
                f"{search_parameters[0].name} is a search range (~BAYESIAN~ key) but --bayes_opt_iters is not "
                "set; add --bayes_opt_iters N to search, or give a concrete value"
            )
        from dmlbench.search import run_search  # imported only for searches (pulls in Ax)

        return run_search(args, config, experiment_dir, argv)

    validate_config(flatten_config(config))
    if existing:
        remove_stale_temp_files(experiment_dir)
    experiment = Experiment(config, experiment_dir, Path(args.dataset_root))
    created = not existing
    root_created = not experiment_dir.parent.exists()
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
        if created and experiment_dir.exists() and not has_checkpoints(experiment_dir):
            shutil.rmtree(
                experiment_dir
            )  # nothing half-made is left behind by an error before the first checkpoint
            if root_created and experiment_dir.parent.is_dir() and not any(experiment_dir.parent.iterdir()):
                experiment_dir.parent.rmdir()  # nor the --root_experiment_folder it made
        kept = experiment_dir if experiment_dir.exists() and has_checkpoints(experiment_dir) else None
        if not isinstance(error, KeyboardInterrupt):
            if not (args.evaluate or args.evaluate_ensemble):
                failure.update(kept=kept, resume=resume_command(args, experiment_dir))
            raise
        if kept is None:
            print(
                "\ninterrupted before the first checkpoint; nothing was kept: rerun the same command",
                file=sys.stderr,
            )
        else:
            print(f"\ninterrupted; continue with: {resume_command(args, experiment_dir)}", file=sys.stderr)
        return EXIT_INTERRUPTED
