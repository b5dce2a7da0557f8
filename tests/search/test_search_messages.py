"""What a search prints: one reproduction shows no interval, readable generator names, Ax's
constant-outcome notice as one actionable line, no library FutureWarnings."""

from __future__ import annotations

import logging
import warnings

from dmlbench.search.messages import CONSTANT_OUTCOME, ConstantOutcomeFilter, generator_label, quiet_libraries
from dmlbench.search.results import aggregate_runs, reproduction_table


def summary(separated: float) -> dict:
    return {"test": {"trained": {"separated": {"mean": {"mean_average_precision_at_r": separated}}}}}


def test_one_reproduction_is_shown_without_an_interval() -> None:
    one = aggregate_runs([summary(0.2)])
    row = reproduction_table(one, metrics={"mean_average_precision_at_r": "MAP@R"}, interval=False)[1]
    assert row[-1] == "20.00"
    two = aggregate_runs([summary(0.2), summary(0.3)])
    assert "[" in reproduction_table(two, metrics={"mean_average_precision_at_r": "MAP@R"})[1][-1]


def test_generator_names_are_readable() -> None:
    assert generator_label("Sobol") == "Sobol (quasi-random)"
    assert generator_label("MBM") == "Bayesian optimisation"
    assert generator_label("SomethingNew") == "SomethingNew"


def test_constant_outcome_becomes_one_line_and_future_warnings_are_silent(capsys) -> None:
    ConstantOutcomeFilter.printed = False
    with warnings.catch_warnings():
        quiet_libraries()
        logger = logging.getLogger("ax.adapter.transforms.standardize_y")
        logger.warning("Outcome MAP@R is constant, within tolerance.")
        logger.warning("Outcome MAP@R is constant, within tolerance.")
        warnings.warn("`torch.jit.script` is deprecated.", FutureWarning)
    err = capsys.readouterr().err
    assert err == CONSTANT_OUTCOME + "\n"
