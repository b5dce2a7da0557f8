"""Search markers: discovery, validation, filling, and their interplay with merging."""

import copy

import pytest

from dmlbench.config import merge_configs, parse_overrides
from dmlbench.errors import ConfigError
from dmlbench.search.space import (
    SEARCH_SUFFIXES,
    SearchParameter,
    fill_search_parameters,
    find_search_parameters,
)

CONFIG = {
    "trainer": {"MetricLossOnly": {"batch_size~INT_BAYESIAN~": [32, 256], "iterations_per_epoch": 100}},
    "loss_funcs": {
        "metric_loss": {
            "MultiSimilarityLoss": {"alpha~LOG_BAYESIAN~": [0.01, 100], "beta": 50, "base~BAYESIAN~": [0, 1]}
        }
    },
    "sampler": {"MPerClassSampler": {"m~CHOICE~": [2, 4, 8]}},
    "optimizers": {"trunk_optimizer": {"RMSprop": {"lr": 1e-6}}},
}


def test_suffix_table():
    assert SEARCH_SUFFIXES == {
        "~BAYESIAN~": "float",
        "~LOG_BAYESIAN~": "log_float",
        "~INT_BAYESIAN~": "int",
        "~CHOICE~": "choice",
    }


def test_find_all_kinds_sorted_by_name():
    found = find_search_parameters(CONFIG)
    assert found == [
        SearchParameter(
            "loss_funcs.metric_loss.MultiSimilarityLoss.alpha",
            ("loss_funcs", "metric_loss", "MultiSimilarityLoss", "alpha"),
            "log_float",
            0.01,
            100.0,
            None,
        ),
        SearchParameter(
            "loss_funcs.metric_loss.MultiSimilarityLoss.base",
            ("loss_funcs", "metric_loss", "MultiSimilarityLoss", "base"),
            "float",
            0.0,
            1.0,
            None,
        ),
        SearchParameter(
            "sampler.MPerClassSampler.m",
            ("sampler", "MPerClassSampler", "m"),
            "choice",
            None,
            None,
            [2, 4, 8],
        ),
        SearchParameter(
            "trainer.MetricLossOnly.batch_size",
            ("trainer", "MetricLossOnly", "batch_size"),
            "int",
            32,
            256,
            None,
        ),
    ]
    base = found[1]
    assert type(base.lower) is float and type(base.upper) is float
    assert type(found[3].lower) is int


def test_any_search_parameters():
    assert find_search_parameters(CONFIG)
    assert not find_search_parameters({"a": {"b": [0, 1]}, "alpha": 3})


@pytest.mark.parametrize(
    "key, value, pattern",
    [
        ("x~BAYESIAN~", [1, 0], "lower < upper"),
        ("x~BAYESIAN~", [1, 1], "lower < upper"),
        ("x~BAYESIAN~", [0], "two numbers"),
        ("x~BAYESIAN~", ["a", 1], "two numbers"),
        ("x~BAYESIAN~", [True, 2], "two numbers"),
        ("x~BAYESIAN~", 0.5, "two numbers"),
        ("x~LOG_BAYESIAN~", [0, 1], "lower > 0"),
        ("x~LOG_BAYESIAN~", [-1, 1], "lower > 0"),
        ("x~INT_BAYESIAN~", [0.5, 3], "integer bounds"),
        ("x~INT_BAYESIAN~", [1, 3.0], "integer bounds"),
        ("x~CHOICE~", [1], "at least 2"),
        ("x~CHOICE~", "abc", "at least 2"),
        ("x~CHOICE~", [1, 1], "distinct"),
        ("x~CHOICE~", [{"a": 1}, 2], "numbers, strings or booleans"),
    ],
)
def test_validation_errors_name_the_key_path(key, value, pattern):
    config = {"loss": {"L": {key: value}}}
    with pytest.raises(ConfigError, match=pattern) as caught:
        find_search_parameters(config)
    assert f"loss.L.{key}" in str(caught.value)


def test_plain_and_search_form_of_one_key_is_an_error():
    with pytest.raises(ConfigError, match="both 'x' and 'x~BAYESIAN~'"):
        find_search_parameters({"a": {"x": 1, "x~BAYESIAN~": [0, 1]}})
    with pytest.raises(ConfigError, match="marked twice"):
        find_search_parameters({"a": {"x~CHOICE~": [1, 2], "x~BAYESIAN~": [0, 1]}})


def test_fill_replaces_markers_in_place_and_leaves_input_alone():
    before = copy.deepcopy(CONFIG)
    values = {
        "loss_funcs.metric_loss.MultiSimilarityLoss.alpha": 2.5,
        "loss_funcs.metric_loss.MultiSimilarityLoss.base": 0.5,
        "sampler.MPerClassSampler.m": 4,
        "trainer.MetricLossOnly.batch_size": 64.0,
    }
    filled = fill_search_parameters(CONFIG, values)
    assert filled == {
        "trainer": {"MetricLossOnly": {"batch_size": 64, "iterations_per_epoch": 100}},
        "loss_funcs": {"metric_loss": {"MultiSimilarityLoss": {"alpha": 2.5, "beta": 50, "base": 0.5}}},
        "sampler": {"MPerClassSampler": {"m": 4}},
        "optimizers": {"trunk_optimizer": {"RMSprop": {"lr": 1e-6}}},
    }
    assert type(filled["trainer"]["MetricLossOnly"]["batch_size"]) is int
    assert list(filled["loss_funcs"]["metric_loss"]["MultiSimilarityLoss"]) == ["alpha", "beta", "base"]
    assert before == CONFIG
    assert not find_search_parameters(filled)


def full_values(**changes):
    values = {
        "loss_funcs.metric_loss.MultiSimilarityLoss.alpha": 1.0,
        "loss_funcs.metric_loss.MultiSimilarityLoss.base": 0.5,
        "sampler.MPerClassSampler.m": 2,
        "trainer.MetricLossOnly.batch_size": 32,
    }
    values.update(changes)
    return values


@pytest.mark.parametrize(
    "values, pattern",
    [
        ({"sampler.MPerClassSampler.m": 2}, "no value given.*alpha"),
        (full_values(**{"unknown.param": 1}), "unknown search parameter.*unknown.param"),
        (full_values(**{"trainer.MetricLossOnly.batch_size": 33.5}), "not an integer"),
        (full_values(**{"trainer.MetricLossOnly.batch_size": 300}), r"outside \[32, 256\]"),
        (full_values(**{"loss_funcs.metric_loss.MultiSimilarityLoss.alpha": 0.001}), "outside"),
        (full_values(**{"sampler.MPerClassSampler.m": 3}), r"not one of \[2, 4, 8\]"),
        (full_values(**{"sampler.MPerClassSampler.m": True}), "not one of"),
        (full_values(**{"loss_funcs.metric_loss.MultiSimilarityLoss.base": "x"}), "not a finite number"),
    ],
)
def test_fill_errors(values, pattern):
    with pytest.raises(ConfigError, match=pattern):
        fill_search_parameters(CONFIG, values)


def test_cli_search_range_then_concrete_value_wins():
    base = {"loss_funcs": {"metric_loss": {"MultiSimilarityLoss": {"alpha": 2, "beta": 50}}}}
    searched = merge_configs(
        base,
        parse_overrides(
            [
                "--loss_funcs",
                "{metric_loss:",
                "{MultiSimilarityLoss:",
                "{alpha~LOG_BAYESIAN~:",
                "[0.01,",
                "100]}}}",
            ]
        ),
    )
    assert [p.name for p in find_search_parameters(searched)] == [
        "loss_funcs.metric_loss.MultiSimilarityLoss.alpha"
    ]
    concrete = merge_configs(
        searched, {"loss_funcs": {"metric_loss": {"MultiSimilarityLoss": {"alpha": 0.5}}}}
    )
    assert concrete == {"loss_funcs": {"metric_loss": {"MultiSimilarityLoss": {"alpha": 0.5, "beta": 50}}}}
    assert not find_search_parameters(concrete)
