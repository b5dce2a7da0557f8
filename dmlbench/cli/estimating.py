"""``--estimate``: the command's config resolved as a new start would resolve it, then a probe
and a projection (:mod:`dmlbench.estimate`). No folder is locked, created or changed."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from dmlbench.cli.config_assembly import apply_overrides
from dmlbench.cli.folder_state import FolderState, experiment_dir_for, starting_config
from dmlbench.config.experiment_files import flatten_config
from dmlbench.config.flag_checks import require_search_iterations
from dmlbench.search.space import SearchParameter, SearchSpace
from dmlbench.user_plugins import named_on_command_line, require_consent, use_user_plugins


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc), else 0: the start-up every process of
    the command pays before its first step."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return 0.0


def middle_value(parameter: SearchParameter) -> Any:
    """The value a search parameter is probed at: the middle of its range (geometric for
    ``~LOG_BAYESIAN~``), or its first choice."""
    if parameter.kind == "choice":
        return (parameter.choices or [None])[0]
    lower, upper = float(parameter.lower or 0), float(parameter.upper or 0)
    if parameter.kind == "log_float":
        return math.sqrt(lower * upper)
    middle = (lower + upper) / 2
    return round(middle) if parameter.kind == "int" else middle


def estimate(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """Resolve, probe, project and print; exit 0."""
    state = FolderState(experiment_dir_for(args), existing=False, continuing=False)
    config = starting_config(args, state, overrides)
    if overrides:
        config = apply_overrides(config, overrides)
    require_consent(config, named_on_command_line(overrides), args.trust_plugin_paths)
    use_user_plugins(config)
    from dmlbench.config.checks import validate_config
    from dmlbench.config.value_checks import check_pretrained_models
    from dmlbench.data.roots import default_dataset_root
    from dmlbench.estimate import estimate_command
    from dmlbench.estimate.workload import Search

    search = None
    space = SearchSpace(config)
    if len(space) or args.bayes_opt_iters is not None:
        require_search_iterations(space.names, args.bayes_opt_iters)
        config = space.fill({p.name: middle_value(p.parameter) for p in space.parameters})
        search = Search(trials=int(args.bayes_opt_iters), reproductions=int(args.reproductions or 0))
    settings = flatten_config(config)
    validate_config(settings)
    check_pretrained_models(settings)
    dataset_root = Path(args.dataset_root or default_dataset_root())
    estimate_command(config, dataset_root, process_age_s(), search)  # torch is imported by now
    return 0
