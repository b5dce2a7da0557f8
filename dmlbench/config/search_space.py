"""Hyperparameter search markers inside a config.

A key with a search suffix names a parameter to tune instead of a value (powerful-benchmarker
syntax, plus ``~CHOICE~``)::

    loss_funcs:
      metric_loss:
        MultiSimilarityLoss:
          alpha~LOG_BAYESIAN~: [0.01, 100]   # log-uniform float in [0.01, 100]   (lo > 0)
          base~BAYESIAN~: [0, 1]             # uniform float in [0, 1]            (lo < hi)
    trainer:
      MetricLossOnly:
        batch_size~INT_BAYESIAN~: [32, 256]  # integer in [32, 256]               (ints)
    sampler:
      MPerClassSampler:
        m~CHOICE~: [2, 4, 8]                 # one of these values                (>= 2, distinct)

:func:`find_search_parameters` lists them (name = dotted path without the suffix, e.g.
``"loss_funcs.metric_loss.MultiSimilarityLoss.alpha"``, sorted by name) and
:func:`fill_search_parameters` replaces each marker by a concrete value under the plain key.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

from dmlbench.config.merge import SEARCH_SUFFIXES, dotted, parse_key
from dmlbench.errors import ConfigError

__all__ = [
    "SEARCH_SUFFIXES",
    "SearchParameter",
    "find_search_parameters",
    "has_search_parameters",
    "fill_search_parameters",
]


@dataclass
class SearchParameter:
    """One tunable value: where it lives in the config and its range or choices."""

    name: str
    path: tuple[str, ...]
    kind: str  # "float" | "log_float" | "int" | "choice"
    lower: float | int | None
    upper: float | int | None
    choices: list | None


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parameter(path: tuple, key: str, suffix: str, spec_value: Any) -> SearchParameter:
    """Validate one marker and describe it."""
    kind = SEARCH_SUFFIXES[suffix]
    where = dotted(path, key)
    name_path = tuple(str(part) for part in path) + (key[: -len(suffix)],)
    name = ".".join(name_path)
    if kind == "choice":
        if not isinstance(spec_value, list) or len(spec_value) < 2:
            raise ConfigError(f"'{where}': ~CHOICE~ needs a list of at least 2 values, got {spec_value!r}")
        for choice in spec_value:
            if not isinstance(choice, (str, int, float, bool)):
                raise ConfigError(
                    f"'{where}': ~CHOICE~ values must be numbers, strings or booleans, got {choice!r}"
                )
        if len({(type(c), c) for c in spec_value}) != len(spec_value):
            raise ConfigError(f"'{where}': ~CHOICE~ values must be distinct, got {spec_value!r}")
        return SearchParameter(name, name_path, kind, None, None, list(spec_value))
    if not (isinstance(spec_value, list) and len(spec_value) == 2 and all(map(_is_number, spec_value))):
        raise ConfigError(f"'{where}': {suffix} needs [lower, upper] (two numbers), got {spec_value!r}")
    lower, upper = spec_value
    if not lower < upper:
        raise ConfigError(f"'{where}': {suffix} needs lower < upper, got [{lower}, {upper}]")
    if kind == "log_float" and lower <= 0:
        raise ConfigError(f"'{where}': ~LOG_BAYESIAN~ needs lower > 0 (log scale), got {lower}")
    if kind == "int":
        if not (_is_int(lower) and _is_int(upper)):
            raise ConfigError(f"'{where}': ~INT_BAYESIAN~ needs integer bounds, got [{lower}, {upper}]")
        return SearchParameter(name, name_path, kind, lower, upper, None)
    return SearchParameter(name, name_path, kind, float(lower), float(upper), None)


def _walk(config: dict, path: tuple, found: list[SearchParameter]) -> None:
    plain_names = {key for key in config if parse_key(key, path).kind == "plain"}
    for key, value in config.items():
        spec = parse_key(key, path)
        if spec.kind == "search":
            if spec.name in plain_names:
                raise ConfigError(
                    f"'{dotted(path, key)}': both '{spec.name}' and '{key}' are set; keep one"
                )
            found.append(_parameter(path, key, spec.suffix, value))
        elif isinstance(value, dict):
            _walk(value, path + (key,), found)


def find_search_parameters(config: dict) -> list[SearchParameter]:
    """All search markers in ``config``, validated, sorted by name."""
    found: list[SearchParameter] = []
    _walk(config, (), found)
    found.sort(key=lambda parameter: parameter.name)
    for before, after in zip(found, found[1:]):
        if before.name == after.name:
            raise ConfigError(f"search parameter '{after.name}' is marked twice; keep one suffix")
    return found


def has_search_parameters(config: dict) -> bool:
    """True when ``config`` has at least one search marker (validating them)."""
    return bool(find_search_parameters(config))


def _checked_value(parameter: SearchParameter, value: Any) -> Any:
    """``value`` as the type the parameter needs, or a ConfigError when it does not fit."""
    if parameter.kind == "choice":
        for choice in parameter.choices:
            if isinstance(choice, bool) == isinstance(value, bool) and value == choice:
                return choice
        raise ConfigError(f"value {value!r} for '{parameter.name}' is not one of {parameter.choices}")
    if not _is_number(value):
        raise ConfigError(f"value {value!r} for '{parameter.name}' is not a finite number")
    if parameter.kind == "int":
        if value != int(value):
            raise ConfigError(f"value {value!r} for '{parameter.name}' is not an integer")
        value = int(value)
    else:
        value = float(value)
    tolerance = 1e-9 * max(1.0, abs(parameter.lower), abs(parameter.upper))
    if not parameter.lower - tolerance <= value <= parameter.upper + tolerance:
        raise ConfigError(
            f"value {value!r} for '{parameter.name}' is outside [{parameter.lower}, {parameter.upper}]"
        )
    return value


def _fill(config: dict, path: tuple, values: dict[str, Any], by_name: dict) -> dict:
    filled: dict = {}
    for key, value in config.items():
        spec = parse_key(key, path)
        if spec.kind == "search":
            name = ".".join(str(part) for part in path + (spec.name,))
            filled[spec.name] = _checked_value(by_name[name], values[name])
        elif isinstance(value, dict):
            filled[key] = _fill(value, path + (key,), values, by_name)
        else:
            filled[key] = value
    return filled


def fill_search_parameters(config: dict, values: dict[str, Any]) -> dict:
    """A new config with every search marker replaced by ``values[name]`` under the plain key.

    Raises :class:`ConfigError` when a parameter has no value, a value does not fit its range
    or choices, or ``values`` names a parameter the config does not have.
    """
    parameters = find_search_parameters(config)
    by_name = {parameter.name: parameter for parameter in parameters}
    missing = [name for name in by_name if name not in values]
    if missing:
        raise ConfigError(f"no value given for search parameter(s): {', '.join(missing)}")
    unknown = [name for name in values if name not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none"
        raise ConfigError(
            f"unknown search parameter(s): {', '.join(unknown)}; the config has: {known}"
        )
    return copy.deepcopy(_fill(config, (), values, by_name))
