"""Search markers -> Ax parameters -> concrete configs."""

import math

import pytest

from dmlbench.errors import ConfigError
from dmlbench.search.space import SearchSpace

CONFIG = {
    "config_loss_and_miners": {
        "loss_funcs": {
            "metric_loss": {
                "MultiSimilarityLoss": {
                    "alpha~LOG_BAYESIAN~": [0.01, 100],
                    "beta~BAYESIAN~": [0, 80],
                    "base": 0.5,
                }
            }
        },
    },
    "config_general": {"batch_size~INT_BAYESIAN~": [16, 64], "seed": 3},
    "config_models": {"models": {"embedder": {"MLP": {"layer_sizes~CHOICE~": [64, 128]}}}},
    "config_eval": {
        "eval_metric_for_best_epoch~CHOICE~": ["precision_at_1", "r_precision"],
        "eval_chunk_size~CHOICE~": [256, "auto"],
    },
}


def by_name(space):
    return {config.name: config for config in space.ax_configs()}


def test_each_marker_becomes_an_ax_parameter_named_by_its_path():
    configs = by_name(SearchSpace(CONFIG))
    alpha = configs["loss_funcs.metric_loss.MultiSimilarityLoss.alpha"]
    assert (alpha.parameter_type, alpha.scaling, tuple(alpha.bounds)) == ("float", "log", (0.01, 100.0))
    beta = configs["loss_funcs.metric_loss.MultiSimilarityLoss.beta"]
    assert (beta.parameter_type, beta.scaling, tuple(beta.bounds)) == ("float", "linear", (0.0, 80.0))
    batch = configs["batch_size"]
    assert (batch.parameter_type, tuple(batch.bounds)) == ("int", (16, 64))
    layers = configs["models.embedder.MLP.layer_sizes"]
    assert (layers.parameter_type, layers.values, layers.is_ordered) == ("int", [64, 128], True)
    metric = configs["eval_metric_for_best_epoch"]
    assert metric.parameter_type == "str" and metric.is_ordered is False
    assert metric.values == ["precision_at_1", "r_precision"]
    assert sorted(configs) == SearchSpace(CONFIG).names


def test_a_choice_of_mixed_types_is_offered_by_position_and_decoded_back():
    space = SearchSpace(CONFIG)
    mixed = by_name(space)["eval_chunk_size"]
    assert (mixed.parameter_type, mixed.values) == ("str", ["0", "1"])
    values = {
        "loss_funcs.metric_loss.MultiSimilarityLoss.alpha": 2.5,
        "loss_funcs.metric_loss.MultiSimilarityLoss.beta": 40.0,
        "batch_size": 32,
        "models.embedder.MLP.layer_sizes": 128,
        "eval_metric_for_best_epoch": "r_precision",
        "eval_chunk_size": "1",
    }
    decoded = space.decode(values)
    assert decoded["eval_chunk_size"] == "auto"
    assert space.decode({**values, "eval_chunk_size": "0"})["eval_chunk_size"] == 256
    assert decoded["batch_size"] == 32 and isinstance(decoded["batch_size"], int)


def test_fill_puts_the_concrete_values_under_the_plain_keys():
    space = SearchSpace(CONFIG)
    values = {
        "loss_funcs.metric_loss.MultiSimilarityLoss.alpha": 2.5,
        "loss_funcs.metric_loss.MultiSimilarityLoss.beta": 40.0,
        "batch_size": 32,
        "models.embedder.MLP.layer_sizes": 64,
        "eval_metric_for_best_epoch": "precision_at_1",
        "eval_chunk_size": 256,
    }
    filled = space.fill(values)
    assert filled["config_loss_and_miners"]["loss_funcs"]["metric_loss"]["MultiSimilarityLoss"] == {
        "alpha": 2.5,
        "beta": 40.0,
        "base": 0.5,
    }
    assert filled["config_general"] == {"batch_size": 32, "seed": 3}
    assert filled["config_models"]["models"]["embedder"]["MLP"] == {"layer_sizes": 64}
    assert "~" not in repr(filled)
    assert "alpha~LOG_BAYESIAN~" in repr(CONFIG)  # the search config itself is untouched


def test_fill_rejects_a_value_outside_the_range():
    space = SearchSpace(CONFIG)
    values = {name: None for name in space.names}
    values.update(
        {
            "loss_funcs.metric_loss.MultiSimilarityLoss.alpha": 1000.0,
            "loss_funcs.metric_loss.MultiSimilarityLoss.beta": 1.0,
            "batch_size": 16,
            "models.embedder.MLP.layer_sizes": 64,
            "eval_metric_for_best_epoch": "r_precision",
            "eval_chunk_size": 256,
        }
    )
    with pytest.raises(ConfigError, match="alpha"):
        space.fill(values)


def test_decode_rejects_a_parameterization_of_another_space():
    with pytest.raises(ConfigError, match="do not match"):
        SearchSpace(CONFIG).decode({"something_else": 1.0})


def test_ax_samples_decode_into_the_declared_ranges_and_choices():
    """Sobol proposals from a real ax.Client land inside each marker's range/choices."""
    from ax import Client

    space = SearchSpace(CONFIG)
    client = Client(random_seed=0)
    client.configure_experiment(parameters=space.ax_configs())
    client.configure_optimization(objective="score")
    client.configure_generation_strategy(initialization_budget=4, initialize_with_center=False)
    for parameters in client.get_next_trials(max_trials=4).values():
        values = space.decode(parameters)
        alpha = values["loss_funcs.metric_loss.MultiSimilarityLoss.alpha"]
        assert 0.01 <= alpha <= 100 and isinstance(alpha, float)
        assert 16 <= values["batch_size"] <= 64 and isinstance(values["batch_size"], int)
        assert values["models.embedder.MLP.layer_sizes"] in (64, 128)
        assert values["eval_chunk_size"] in (256, "auto")
        assert math.isfinite(values["loss_funcs.metric_loss.MultiSimilarityLoss.beta"])
        space.fill(values)  # every proposal makes a valid concrete config
