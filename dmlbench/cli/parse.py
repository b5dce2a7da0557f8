"""The command line's known flags (argparse); every other ``--key value`` is a config override::

    python run.py --experiment_name NAME [--config_X [default, with_cars196]] [--key value ...]
    python run.py --reproduce_results exp_configs/demo
    python run.py --experiment_name NAME --resume_training latest
    python run.py --experiment_name NAME --evaluate --evaluate_ensemble --splits_to_eval [test]

``python run.py --help`` lists them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dmlbench.config.flag_checks import OneLineArgumentParser
from dmlbench.config.keys import CATEGORIES


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
        "--estimate",
        action="store_true",
        help="project how long this command takes on this device (a short probe; writes nothing)",
    )
    parser.add_argument(
        "--trust_plugin_paths",
        action="store_true",
        help="import the plugin_paths that config files name (else only those named by --plugin_paths)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an unexpected error (also DMLBENCH_DEBUG=1)",
    )
    parser.add_argument(
        "--splits_to_eval",
        nargs="+",
        help="splits tested by --evaluate, e.g. [test]; when training, the splits scored at each "
        "validation, e.g. [train, val, test] (val alone selects the best epoch)",
    )
    parser.add_argument(
        "--dry_run",
        action="store_true",
        help="print the resolved config as YAML and exit; reads no data, writes nothing",
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
