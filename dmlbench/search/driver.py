"""``--bayes_opt_iters N``: the whole search, from the first trial to the report.

1. Ax proposes trials (Sobol first, then Bayesian optimisation); each trial is a sub-experiment
   ``trials/trial_NNNN`` whose resolved config holds the proposed values; its objective is the
   mean validation score over the folds, reported to Ax with its SEM.
2. The best trial (highest observed mean, ties to the lowest index) is tested with its
   concatenated ensemble; then it is retrained ``--reproductions`` times with derived seeds
   (``reproductions/reproduction_NNNN``) and each retraining is tested.
3. The report (``meta/``) gives the best parameters, the trials table, the search trace plot and
   the reproductions' means with 95% Student-t confidence intervals.

Rerunning the same command continues: Ax's state is saved after every change; a trial that was
running resumes (from its checkpoints) if its folder holds the parameters Ax has for it, else it
is abandoned and replaced; a trial whose result is on disk is completed without rerunning; only
missing reproductions run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmlbench import warning_display
from dmlbench.config.defaults import setting
from dmlbench.config.experiment_files import flatten_config, record_command_line, save_configs
from dmlbench.errors import ConfigError, ExperimentError
from dmlbench.integrity import remove_stale_temp_files
from dmlbench.search.executor_factory import make_executor
from dmlbench.search.layout import SearchLayout
from dmlbench.search.results import best_trial
from dmlbench.search.settings import SearchSettings
from dmlbench.search.space import SearchSpace
from dmlbench.search.state import open_search, sample_values, search_lock
from dmlbench.search.trials import Search, format_values, log

CONFIDENCE_LEVEL = 0.95


def remove_search_temp_files(layout: SearchLayout) -> list[Path]:
    """The search's own leftovers of interrupted writes (configs/, meta/, the files of trials/);
    job folders are cleaned by their jobs, under their own lock (:func:`dmlbench.search.jobs.run_job`)."""
    removed = remove_stale_temp_files(layout.trials_dir, recursive=False)
    for folder in (layout.config_dir, layout.meta_dir):
        removed += remove_stale_temp_files(folder)
    return removed


def run_search(
    args: Any, config: dict[str, dict[str, Any]], experiment_dir: Path, argv: Sequence[str]
) -> int:
    """Run or continue the search described by ``config`` in ``experiment_dir``; 0 on success."""
    from dmlbench.config.checks import validate_config
    from dmlbench.config.value_checks import check_pretrained_models
    from dmlbench.records.environment import phase_times, timed_phase
    from dmlbench.records.result_tables import format_text_table
    from dmlbench.search.results import reproduction_table
    from dmlbench.search.search_report import build_search_report, write_search_outputs

    options = SearchSettings.from_args(args)
    iterations, reproductions = options.iterations, options.reproductions
    space = SearchSpace(config)
    if not len(space):
        raise ConfigError(
            "--bayes_opt_iters is set but the config has no search key; mark one, e.g. "
            "--loss_funcs~APPLY~3 {alpha~LOG_BAYESIAN~: [0.01, 100]}, or drop --bayes_opt_iters"
        )
    sample = flatten_config(space.fill(sample_values(space)))  # one point of the space, checked up front
    validate_config(sample)
    check_pretrained_models(sample)
    settings = flatten_config(config)
    metric = str(settings["eval_metric_for_best_epoch"])
    seed = int(setting(settings, "seed"))
    layout = SearchLayout(Path(experiment_dir))

    with search_lock(layout), warning_display.shared_across_processes():
        remove_search_temp_files(layout)
        # the executor checks its options (slurm: ...) before the search's state is written: a refused
        # search leaves nothing behind
        executor = make_executor(
            options.trial_executor, settings, options.max_parallel_trials, options.trials_per_gpu
        )
        ax = open_search(layout, config, space, metric, seed, options.sobol_trials, iterations)
        save_configs(config, layout.config_dir)
        record_command_line(layout.experiment_dir, argv)
        search = Search(layout, config, space, ax, executor, options.dataset_root, metric)
        try:
            search.reconcile()
            with timed_phase(layout.meta_dir, "trials"):
                search.run_trials(iterations)
            rows = search.rows()
            best = best_trial(rows)
            if best is None:
                raise ExperimentError(
                    f"no trial of {layout.trials_dir} completed (see the job_error.txt files); "
                    "fix the cause and rerun the same command"
                )
            log(
                f"best: trial {best.index}, {metric} {100 * best.observed_mean:.2f}: {format_values(best.parameters)}"
            )
            with timed_phase(layout.meta_dir, "best trial test"):
                best_test = search.test_best(best)
            with timed_phase(layout.meta_dir, "reproductions"):
                runs = search.reproduce(best, reproductions, seed) if reproductions else []
        except KeyboardInterrupt:
            print(
                f"\ninterrupted; rerun the same command to continue the search in {layout.experiment_dir}",
                file=sys.stderr,
            )
            return 130
        finally:
            executor.close()

        report = build_search_report(
            layout, metric, iterations, search.counts(), rows, best, best_test, runs, CONFIDENCE_LEVEL
        )
        report["phase_times"] = phase_times(layout.meta_dir)
        write_search_outputs(layout.meta_dir, report, rows, space.names, metric)
    if runs:
        print()
        print(format_text_table(reproduction_table(report["reproductions"]["results"])))
    print(
        f"\nsearch report: {layout.meta_dir / 'report.html'}  (also report.md, best_parameters.yaml, "
        "csv/trials.csv, plots/search_trace.png)"
    )
    return 0
