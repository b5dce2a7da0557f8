"""Best-trial choice, best-so-far trace, reproduction statistics, folder names, trials CSV."""

import csv
import io
import math
from pathlib import Path

import pytest

from dmlbench.search.layout import SearchLayout, numbered
from dmlbench.search.results import TrialRow, aggregate_runs, best_so_far, best_trial, reproduction_table
from dmlbench.search.search_report import override_flags, trials_csv


def row(index, mean, status="COMPLETED", **parameters):
    return TrialRow(
        index=index,
        status=status,
        generation_node="Sobol",
        parameters=parameters,
        folder=f"trials/{numbered('trial', index)}",
        mean=mean,
        sem=0.01 if mean is not None else None,
    )


def test_best_trial_is_the_highest_observed_mean_ties_to_the_lowest_index():
    rows = [
        row(0, 0.30),
        row(1, 0.50),
        row(2, 0.50),
        row(3, 0.90, status="FAILED"),
        row(4, None, status="RUNNING"),
    ]
    assert best_trial(rows).index == 1
    assert best_trial(list(reversed(rows))).index == 1
    assert best_trial([row(0, None, status="ABANDONED")]) is None


def test_best_so_far_is_a_running_maximum_over_completed_trials():
    rows = [row(0, 0.2), row(1, 0.1), row(2, None, status="FAILED"), row(3, 0.4), row(4, 0.3)]
    assert best_so_far(rows) == [(0, 0.2), (1, 0.2), (3, 0.4), (4, 0.4)]


def summary(separated_map, concatenated_map):
    return {
        "test": {
            "trained": {
                "separated": {
                    "mean": {"mean_average_precision_at_r": separated_map},
                    "sem": {},
                    "per_fold": {},
                },
                "concatenated": {"mean_average_precision_at_r": concatenated_map},
            }
        }
    }


def test_reproduction_intervals_are_student_t_over_reproductions():
    runs = [summary(0.20, 0.25), summary(0.22, 0.26), summary(0.27, 0.30)]
    stats = aggregate_runs(runs)["test"]["trained"]
    # hand computation: values 0.20, 0.22, 0.27 -> mean 0.23, s^2 = (0.0009+0.0001+0.0016)/2 = 0.0013
    # t_{0.975, 2} = 4.302652729911275 (table value)
    separated = stats["separated"]["mean_average_precision_at_r"]
    half = 4.302652729911275 * math.sqrt(0.0013 / 3)
    assert separated["mean"] == pytest.approx(0.23)
    assert separated["ci_low"] == pytest.approx(0.23 - half)
    assert separated["ci_high"] == pytest.approx(0.23 + half)
    assert separated["n"] == 3
    concatenated = stats["concatenated"]["mean_average_precision_at_r"]
    assert concatenated["mean"] == pytest.approx(0.27)
    assert concatenated["values"] == [0.25, 0.26, 0.30]


def test_one_reproduction_gives_a_degenerate_interval():
    stats = aggregate_runs([summary(0.2, 0.3)])["test"]["trained"]["separated"]["mean_average_precision_at_r"]
    assert stats["ci_low"] == stats["ci_high"] == stats["mean"] == 0.2


def test_reproduction_table_shows_mean_and_interval_in_percent():
    table = reproduction_table(aggregate_runs([summary(0.20, 0.25), summary(0.22, 0.27)]))
    assert table[0][:3] == ["split", "trained_status", "mode"]
    separated = next(r for r in table if r[2] == "separated")
    # mean 0.21, SEM 0.01, t_{0.975,1} = 12.706204736174698 -> 21.00 [8.29, 33.71]
    assert separated[-1] == "21.00 [8.29, 33.71]"


def test_trial_folder_names_never_collide_or_prefix_each_other():
    layout = SearchLayout(Path("/x"))
    names = [layout.trial_dir(i).name for i in range(20001)]
    assert len(set(names)) == len(names)
    assert layout.trial_dir(4).name == "trial_0004" and layout.trial_dir(40).name == "trial_0040"
    assert not layout.trial_dir(40).name.startswith(layout.trial_dir(4).name)
    assert layout.trial_dir(12345).name == "trial_12345"


def test_trials_csv_lists_every_trial_with_its_parameters():
    rows = [row(1, 0.5, alpha=2.0), row(0, None, status="FAILED", alpha=0.1)]
    rows[1].error = "ValueError: boom"
    parsed = list(csv.DictReader(io.StringIO(trials_csv(rows, ["alpha"]))))
    assert [r["trial"] for r in parsed] == ["0", "1"]
    assert parsed[1]["objective_mean"] == "0.5" and parsed[1]["alpha"] == "2.0"
    assert parsed[0]["status"] == "FAILED" and parsed[0]["objective_mean"] == ""
    assert parsed[0]["error"] == "ValueError: boom"


def test_override_flags_reproduce_the_values_on_the_command_line():
    import shlex

    from dmlbench.config.overrides import parse_overrides

    flags = override_flags(
        {
            "loss_funcs.metric_loss.MultiSimilarityLoss.alpha": 0.1 + 0.2,
            "sampler.m": 4,
            "name": "two words",
            "flag": True,
        }
    )
    parsed = parse_overrides(shlex.split(flags))
    assert parsed["loss_funcs"]["metric_loss"]["MultiSimilarityLoss"]["alpha"] == 0.1 + 0.2
    assert parsed["sampler"]["m"] == 4 and parsed["name"] == "two words" and parsed["flag"] is True
