"""The finished tiny run and search the corruption tests damage, and how they read them."""

from __future__ import annotations

import shutil
from pathlib import Path

from demo_commands import SMALL_RUN, TINY_TRIAL

REPO = Path(__file__).resolve().parents[2]
RUN = SMALL_RUN
SEARCH = [
    "--reproduce_results",
    str(REPO / "exp_configs" / "demo"),
    "--merge_argparse_when_resuming",
    "--experiment_name",
    "search",
    *TINY_TRIAL,
    "--loss_funcs~APPLY~3",
    "{alpha~LOG_BAYESIAN~: [0.5, 10]}",
    "--bayes_opt_iters",
    "2",
    "--sobol_trials",
    "2",
]
MARKER = "pwned_by_checkpoint"


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "logs" / folder.name
    shutil.copytree(folder, target)
    return target


def fold_dir(experiment: Path) -> Path:
    return sorted(p for p in experiment.iterdir() if (p / "checkpoints").is_dir())[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and "command_line.txt" not in p.name
        and not p.name.startswith("records.db")
        and "tensorboard" not in p.parts
        and p.suffix != ".lock"
    }
