"""The per-fold plugin lifecycle: building from config, the one similarity rule, checkpoint loading."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dmlbench.errors import ConfigError
from dmlbench.registry import register
from dmlbench.training.plugin_set import PluginSet
from dmlbench.training.plugins import TrainingPlugin


def dot(a, b):
    return a @ b.T


def negative_distance(a, b):
    return -torch.cdist(a, b)


@register("training_plugin", name="TestOnlyProjection")
class Projection(TrainingPlugin):
    def __init__(self, embedding_size: int, with_similarity: bool = True) -> None:
        self.projection = nn.Linear(embedding_size, 2, bias=False)
        self.with_similarity = with_similarity
        self.count = 0

    def modules(self):
        return {"projection": self.projection}

    def eval_similarity(self):
        return dot if self.with_similarity else None

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


class Distance(TrainingPlugin):
    def eval_similarity(self):
        return negative_distance


def test_from_config_fills_the_context_and_keeps_config_order() -> None:
    plugins = PluginSet.from_config({"TestOnlyProjection": {}}, {"embedding_size": 5, "num_classes": 3})
    assert len(plugins) == 1
    assert plugins[0].projection.in_features == 5
    assert set(plugins.modules()) == {"projection"}


def test_no_plugin_similarity_means_none() -> None:
    assert PluginSet([]).similarity() is None
    assert PluginSet([Projection(3, with_similarity=False)]).similarity() is None


def test_one_plugin_similarity_is_the_similarity() -> None:
    plugins = PluginSet([Projection(3, with_similarity=False), Distance()])
    assert plugins.similarity() is negative_distance


def test_two_plugin_similarities_fail_when_the_set_is_built() -> None:
    with pytest.raises(ConfigError, match="Projection, Distance each define a test-time similarity"):
        PluginSet([Projection(3), Distance()])


def test_load_checkpoint_restores_module_weights_and_plugin_states() -> None:
    weights = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    saved = {"models": {"projection": {"weight": weights}}, "plugins": [{"count": 7}]}
    plugins = PluginSet([Projection(3)])
    plugins.load_checkpoint(saved)
    assert torch.equal(plugins[0].projection.weight.detach(), weights)
    assert plugins[0].count == 7
    assert plugins.state_dicts() == [{"count": 7}]


def test_wrap_distances_applies_plugins_in_order_last_outermost() -> None:
    class Tag(TrainingPlugin):
        def __init__(self, tag):
            self.tag = tag

        def wrap_distance(self, distance, loss_role):
            return (self.tag, distance, loss_role)

    class Loss:
        distance = "base"

    loss, plain = Loss(), nn.MSELoss()
    PluginSet([Tag("a"), Tag("b")]).wrap_distances({"metric_loss": loss, "plain": plain})
    assert loss.distance == ("b", ("a", "base", "metric_loss"), "metric_loss")
    assert not hasattr(plain, "distance")
