"""The training plugins of one fold and their lifecycle, in one object.

1. :meth:`PluginSet.from_config` builds ``training_plugins: {Name: {kwargs}}`` in config order
   (``num_classes`` / ``embedding_size`` filled in when a constructor accepts them) and checks
   the test-time similarity rule below;
2. :meth:`PluginSet.wrap_distances` wraps each loss's distance (the last plugin outermost), then
   :meth:`PluginSet.setup` runs every plugin's ``setup`` (the trainer does both at construction);
3. :meth:`PluginSet.load_checkpoint` restores the plugins' modules and states from a checkpoint
   (``latest.pt`` or ``best.pt``), the one loader used for resuming and for testing;
4. :meth:`PluginSet.similarity` is the pairwise score for retrieval, used for validation and test.

Similarity rule: at most one plugin may return a similarity from ``eval_similarity()``; two are
a :class:`~dmlbench.errors.ConfigError` when the set is built (so before training starts), and
without one the embedding dot product is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.registry import build
from dmlbench.training.checkpoint import load_models
from dmlbench.training.plugin_checks import check_declared_parameters
from dmlbench.training.plugins import StepContext, TrainingPlugin

#: The registry kind of training plugins (``@register(PLUGIN_KIND)``).
PLUGIN_KIND = "training_plugin"


class PluginSet:
    """The fold's :class:`TrainingPlugin` objects, in config order (iterable like a list)."""

    def __init__(self, plugins: Sequence[TrainingPlugin] = ()) -> None:
        self.plugins = list(plugins)
        for plugin in self.plugins:
            check_declared_parameters(plugin)  # a parameter outside modules() would silently never train
        self.similarity()  # the similarity rule, checked at build time

    @classmethod
    def from_config(
        cls, specs: dict[str, Any] | None, context: dict[str, Any], device: torch.device | str | None = None
    ) -> PluginSet:
        """Build ``training_plugins`` specs; their modules are moved to ``device``."""
        plugins = [
            build(PLUGIN_KIND, {name: kwargs}, role=f"training_plugins.{name}", context=context)
            for name, kwargs in (specs or {}).items()
        ]
        plugin_set = cls(plugins)
        if device is not None:
            for module in plugin_set.modules().values():
                module.to(device)
        return plugin_set

    def __iter__(self) -> Iterator[TrainingPlugin]:
        return iter(self.plugins)

    def __len__(self) -> int:
        return len(self.plugins)

    def __getitem__(self, index: int) -> TrainingPlugin:
        return self.plugins[index]

    def modules(self) -> dict[str, nn.Module]:
        """Every plugin's trained modules by name (``optimizers.<name>_optimizer`` updates each)."""
        modules: dict[str, nn.Module] = {}
        for plugin in self.plugins:
            modules.update(plugin.modules())
        return modules

    def wrap_distances(self, losses: dict[str, Any]) -> None:
        """``loss.distance = pluginN.wrap_distance(... plugin1.wrap_distance(distance, role) ..., role)``
        for every loss with a ``distance`` attribute."""
        for role, loss in losses.items():
            if not hasattr(loss, "distance"):
                continue
            distance = loss.distance
            for plugin in self.plugins:
                distance = plugin.wrap_distance(distance, role)
            loss.distance = distance

    def setup(self, context: StepContext) -> None:
        for plugin in self.plugins:
            plugin.setup(context)

    def state_dicts(self) -> list[dict[str, Any]]:
        """What a checkpoint's ``plugins`` entry holds: each plugin's ``state_dict()``, in order."""
        return [plugin.state_dict() for plugin in self.plugins]

    def load_states(self, saved: dict[str, Any]) -> None:
        """Each plugin's ``load_state_dict`` with its entry of the checkpoint's ``plugins`` list."""
        for plugin, state in zip(self.plugins, saved.get("plugins", [])):
            plugin.load_state_dict(state)

    def load_checkpoint(self, saved: dict[str, Any]) -> None:
        """Restore from a checkpoint dict: module weights from ``saved["models"][name]``
        (:func:`dmlbench.training.checkpoint.load_models`) and the plugin states."""
        load_models(saved, self.modules())
        self.load_states(saved)

    def on_epoch_end(self, epoch: int, context: StepContext) -> None:
        for plugin in self.plugins:
            plugin.on_epoch_end(epoch, context)

    def similarity(self) -> Callable[[Any, Any], Tensor] | None:
        """The one plugin similarity for retrieval (validation and test), or ``None``."""
        found = [(plugin, sim) for plugin in self.plugins if (sim := plugin.eval_similarity()) is not None]
        if len(found) > 1:
            names = ", ".join(type(plugin).__name__ for plugin, _ in found)
            raise ConfigError(
                f"training_plugins: {names} each define a test-time similarity "
                "(eval_similarity); keep one of them"
            )
        return found[0][1] if found else None


def as_plugin_set(plugins: PluginSet | Sequence[TrainingPlugin] | None) -> PluginSet:
    """``plugins`` as a :class:`PluginSet` (a plain list is wrapped)."""
    return plugins if isinstance(plugins, PluginSet) else PluginSet(plugins or ())
