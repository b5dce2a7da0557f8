"""A config's constructor arguments checked against the class's signature before anything is built.

For an argument of a class named in a config (``loss_funcs.metric_loss.MultiSimilarityLoss.alpha``):

- with a type annotation (``lr: float | Tensor``, ``scale: tuple[float, float]``): pydantic validates
  the value against it (``TypeAdapter(annotation).validate_python``); a string is accepted only
  where the annotation admits one, as the class would receive it unconverted;
- without one, the default says what it can: a bool default wants true/false, a number default
  (``alpha=2``) refuses a string (PB's ``alpha: two`` reached the loss and failed in training);
  other defaults (strings such as ``triplets_per_anchor="all"``, which also takes 5; None; objects)
  say nothing and the value passes.

The first wrong value raises :class:`ConfigError` naming the argument's path, the value and the type.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import typing
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from dmlbench.errors import ConfigError

_ARBITRARY = ConfigDict(arbitrary_types_allowed=True)


def init_chain(factory: Any) -> list[Any]:
    """The callables whose signatures say which keywords ``factory`` takes: a class's
    ``__init__`` methods along its MRO, or the function itself."""
    if not inspect.isclass(factory):
        return [factory]
    classes: tuple[Any, ...] = inspect.getmro(factory)  # Any: each class's own __init__ is read
    return [owner.__init__ for owner in classes if owner is not object]


def _parameter(factory: Any, name: str) -> tuple[inspect.Parameter, Any] | None:
    """The parameter ``name`` takes along ``factory``'s ``__init__`` chain, with its resolved
    annotation (``inspect.Parameter.empty`` when none can be read)."""
    for target in init_chain(factory):
        try:
            parameters = inspect.signature(target).parameters
        except (TypeError, ValueError):
            return None
        found = parameters.get(name)
        if found is not None and found.kind in (found.POSITIONAL_OR_KEYWORD, found.KEYWORD_ONLY):
            try:
                hints = typing.get_type_hints(target)
            except Exception:  # unresolvable forward references: fall back to the default's type
                hints = {}
            return found, hints.get(name, inspect.Parameter.empty)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return None
    return None


@functools.lru_cache(maxsize=512)
def _adapter(annotation: Any) -> TypeAdapter | None:
    try:
        return TypeAdapter(annotation, config=_ARBITRARY)
    except Exception:  # an annotation pydantic cannot build a schema for: not checked
        return None


def _admits(annotation: Any, value: Any, strict: bool) -> bool | None:
    adapter = _adapter(annotation)
    if adapter is None:
        return None
    try:
        adapter.validate_python(value, strict=strict)
    except ValidationError:
        return False
    except Exception:
        return None
    return True


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("torch.Tensor", "Tensor")


def expected_type(factory: Any, name: str, value: Any) -> str | None:
    """None when ``value`` fits argument ``name`` of ``factory`` (or nothing is known about it),
    else the expected type in words."""
    found = _parameter(factory, name)
    if found is None:
        return None
    parameter, annotation = found
    if annotation is not inspect.Parameter.empty and annotation is not Any:
        if isinstance(value, str) and isinstance(parameter.default, str):
            return None
        verdict = _admits(annotation, value, strict=isinstance(value, str))
        return _type_name(annotation) if verdict is False else None
    default = parameter.default
    if default is inspect.Parameter.empty or default is None or value is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, numbers.Real) and isinstance(value, str):
        return "a number"  # (a number default says no more: lists, or "all" beside 5, may be valid)
    return None


def check_argument_value(factory: Any, name: str, value: Any, where: str) -> None:
    """Raise :class:`ConfigError` ("where.name: expected a number, got 'two'") for a wrong value."""
    expected = expected_type(factory, name, value)
    if expected is not None:
        raise ConfigError(f"{where}.{name}: expected {expected}, got {value!r}")
