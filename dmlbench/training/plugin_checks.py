"""Build-time checks of a training plugin's declared parts.

A parameter that a plugin holds but does not return from ``modules()`` is never given to an
optimizer (it silently stays at its initial value) and is not checkpointed; such a plugin is a
:class:`~dmlbench.errors.ConfigError` when it is built, before training starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import nn

from dmlbench.errors import ConfigError


def _held(value: Any, name: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """``(attribute path, value)`` for values held directly or in lists, tuples and dicts."""
    if isinstance(value, (nn.Module, nn.Parameter)):
        yield name, value
    elif depth < 3 and isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _held(item, f"{name}[{index}]", depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for key, item in value.items():
            yield from _held(item, f"{name}[{key!r}]", depth + 1)


def undeclared_parameters(plugin: Any) -> list[str]:
    """Attribute paths of trainable parameters the plugin holds (an ``nn.Parameter``, or an
    ``nn.Module`` with parameters that require gradients) that no module of ``plugin.modules()``
    contains. Plain tensors are state, not parameters, and are not checked."""
    declared = {id(p) for module in plugin.modules().values() for p in module.parameters()}
    found = []
    for attribute, value in vars(plugin).items():
        for path, held in _held(value, attribute):
            tensors = list(held.parameters()) if isinstance(held, nn.Module) else [held]
            if any(t.requires_grad and id(t) not in declared for t in tensors):
                found.append(path)
    return found


def check_declared_parameters(plugin: Any) -> None:
    """A one-line :class:`ConfigError` for the first undeclared trainable attribute."""
    missing = undeclared_parameters(plugin)
    if missing:
        name = type(plugin).__name__
        raise ConfigError(
            f"training_plugins.{name}: self.{missing[0]} holds trainable parameters that "
            f"modules() does not return, so they would never train nor be checkpointed; return "
            f"the nn.Module holding them from modules() (or detach / requires_grad_(False) them)"
        )
