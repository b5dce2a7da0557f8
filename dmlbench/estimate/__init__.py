"""``--estimate``: how long a command will take on this device, before it runs.

A short probe with the command's own config and data (:mod:`dmlbench.estimate.probe`) measures
the cost of a training step, an embedded image and a scored pair; the command's work is
counted from its config and split sizes (:mod:`dmlbench.estimate.workload`); their product
(:mod:`dmlbench.estimate.projection`) is printed per phase, with its assumptions, and one line
with the total. Nothing is written: the probe's scratch folder is a temporary directory,
removed before the estimate is printed.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Any

from dmlbench.config.defaults import setting
from dmlbench.config.experiment_files import flatten_config
from dmlbench.estimate.probe import MEASURED_STEPS, WARMUP_STEPS, probe
from dmlbench.estimate.projection import Projection, duration, format_projection, project
from dmlbench.estimate.workload import Schedule, Search, count_work

__all__ = ["estimate_command", "schedule_of"]


def schedule_of(settings: dict[str, Any]) -> Schedule:
    return Schedule(
        num_epochs=int(settings["num_epochs_train"]),
        iterations_per_epoch=int(settings["iterations_per_epoch"]),
        save_interval=int(settings["save_interval"]),
        check_untrained_accuracy=bool(setting(settings, "check_untrained_accuracy")),
        retrieval_examples=int(setting(settings, "eval_retrieval_examples")) > 0,
    )


def estimate_command(
    config: dict[str, dict[str, Any]],
    dataset_root: Path,
    startup_s: float,
    search: Search | None = None,
) -> Projection:
    """Probe, count, project and print; ``startup_s`` is what this process took to get here
    (each process of the command pays it again)."""
    settings = flatten_config(config)
    schedule = schedule_of(settings)
    print(
        f"estimate: probing {WARMUP_STEPS + MEASURED_STEPS} training steps of the first fold, "
        "embedding and scoring samples (nothing is written)",
        flush=True,
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the probe's own fold log is not the run's
        costs, sizes = probe(config, dataset_root)
    print(f"probe took {time.perf_counter() - start:.0f} s")
    work = count_work(sizes.folds, sizes.test, schedule, search)
    projection = project(work, costs, startup_s)
    validated = any(fold.val for fold in sizes.folds)
    projection.assumptions += [
        f"every fold trains all {schedule.num_epochs} epochs "
        + (
            f"(num_epochs_train is an upper bound; early stopping with patience {settings['patience']} "
            "usually ends sooner)"
            if validated
            else "(no validation split: no early stopping)"
        ),
        "the device is as busy during the run as during the probe",
    ]
    if search is not None:
        projection.assumptions.append(
            f"{search.trials} trials and {search.reproductions} reproductions, each a process of its own, "
            "one at a time, at the probed (non-search) values"
        )
    from dmlbench.runner import resolve_device

    device = str(resolve_device(setting(settings, "device")))
    lines = format_projection(projection, costs, work, device).splitlines()
    val = max((fold.val for fold in sizes.folds), default=0)
    per_epoch = schedule.iterations_per_epoch * costs.step_s
    validation = costs.embedding(val) + costs.scoring(val, val) if val else 0.0
    lines.insert(
        -1,
        f"  one epoch of a fold: {duration(per_epoch)} of training"
        + (f", plus {duration(validation)} per validation (every {schedule.save_interval})" if val else "")
        + ": scale by the epochs early stopping leaves",
    )
    print("\n".join(lines))
    return projection
