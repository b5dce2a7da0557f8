"""The search space, in one place: the search markers of a config (``~BAYESIAN~`` ...), and
the same parameters as Ax sees them.

Hyperparameter search markers inside a config.

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

As Ax parameters: each marker becomes one Ax parameter named by the key's dotted path without the suffix
(``loss_funcs.metric_loss.MultiSimilarityLoss.alpha``):

========================  ==========================================================
``~BAYESIAN~ [lo, hi]``   float range, linear scale
``~LOG_BAYESIAN~``        float range, log scale (Ax searches log(x) uniformly)
``~INT_BAYESIAN~``        integer range
``~CHOICE~ [a, b, ...]``  categorical (ordered when all values are numbers)
========================  ==========================================================

Ax needs the values of a choice parameter to share one type; a choice mixing types (e.g.
``[2, "auto"]``) is offered to Ax as the strings ``"0", "1", ...`` (positions in the list) and
decoded back.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

from dmlbench.config.keys import SEARCH_SUFFIXES, dotted, parse_key
from dmlbench.errors import ConfigError


@dataclass
class SearchParameter:
    """One tunable value: where it lives in the config and its range or choices."""

    name: str
    path: tuple[str, ...]
    kind: str  # "float" | "log_float" | "int" | "choice"
    lower: float | int | None
    upper: float | int | None
    choices: list | None

    @property
    def choice_values(self) -> list:
        """The values of a ~CHOICE~ parameter."""
        assert self.choices is not None, f"{self.name} is a range, not a choice"
        return self.choices

    @property
    def bounds(self) -> tuple[float, float]:
        """(lower, upper) of a range parameter."""
        assert self.lower is not None and self.upper is not None, f"{self.name} is a choice, not a range"
        return self.lower, self.upper


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
                raise ConfigError(f"'{dotted(path, key)}': both '{spec.name}' and '{key}' are set; keep one")
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


def _checked_value(parameter: SearchParameter, value: Any) -> Any:
    """``value`` as the type the parameter needs, or a ConfigError when it does not fit."""
    if parameter.kind == "choice":
        for choice in parameter.choice_values:
            if isinstance(choice, bool) == isinstance(value, bool) and value == choice:
                return choice
        raise ConfigError(f"value {value!r} for '{parameter.name}' is not one of {parameter.choice_values}")
    if not _is_number(value):
        raise ConfigError(f"value {value!r} for '{parameter.name}' is not a finite number")
    if parameter.kind == "int":
        if value != int(value):
            raise ConfigError(f"value {value!r} for '{parameter.name}' is not an integer")
        value = int(value)
    else:
        value = float(value)
    lower, upper = parameter.bounds
    tolerance = 1e-9 * max(1.0, abs(lower), abs(upper))
    if not lower - tolerance <= value <= upper + tolerance:
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
        raise ConfigError(f"unknown search parameter(s): {', '.join(unknown)}; the config has: {known}")
    return copy.deepcopy(_fill(config, (), values, by_name))


Config = dict[str, dict[str, Any]]


def _choice_type(values: list) -> Literal["bool", "int", "float", "str"] | None:
    """The Ax parameter type shared by all ``values`` ("bool", "int", "float", "str"), or None."""
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if any(isinstance(v, bool) for v in values):
        return None
    if all(isinstance(v, int) for v in values):
        return "int"
    if all(isinstance(v, (int, float)) for v in values):
        return "float"
    if all(isinstance(v, str) for v in values):
        return "str"
    return None


@dataclass(frozen=True)
class AxParameter:
    """One search parameter as Ax sees it, with the decoding back to the config's value."""

    parameter: SearchParameter

    @property
    def name(self) -> str:
        return self.parameter.name

    @property
    def encoded_by_position(self) -> bool:
        return self.parameter.kind == "choice" and _choice_type(self.parameter.choice_values) is None

    def ax_config(self) -> Any:
        """The ``ax.RangeParameterConfig`` / ``ax.ChoiceParameterConfig`` for this parameter."""
        from ax import ChoiceParameterConfig, RangeParameterConfig

        p = self.parameter
        if p.kind == "choice":
            value_type = _choice_type(p.choice_values)
            if value_type is None:
                values: list = [str(i) for i in range(len(p.choice_values))]
                return ChoiceParameterConfig(
                    name=p.name, values=values, parameter_type="str", is_ordered=False
                )
            values = [float(v) for v in p.choice_values] if value_type == "float" else list(p.choice_values)
            return ChoiceParameterConfig(
                name=p.name,
                values=values,
                parameter_type=value_type,
                is_ordered=value_type in ("int", "float"),
            )
        if p.kind == "int":
            return RangeParameterConfig(
                name=p.name, bounds=(int(p.bounds[0]), int(p.bounds[1])), parameter_type="int"
            )
        return RangeParameterConfig(
            name=p.name,
            bounds=(float(p.bounds[0]), float(p.bounds[1])),
            parameter_type="float",
            scaling="log" if p.kind == "log_float" else "linear",
        )

    def decode(self, value: Any) -> Any:
        """The config value for Ax's ``value`` of this parameter."""
        p = self.parameter
        if p.kind == "choice":
            if self.encoded_by_position:
                return p.choice_values[int(value)]
            for choice in p.choice_values:  # the config's own object (2, not 2.0)
                if isinstance(choice, bool) == isinstance(value, bool) and choice == value:
                    return choice
            raise ConfigError(
                f"search parameter {p.name}: Ax proposed {value!r}, not one of {p.choice_values}"
            )
        if p.kind == "int":
            return int(value)
        return float(value)


class SearchSpace:
    """The search markers of a config (categories ``config_general`` ... ``config_factories``)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._categories: dict[str, list[SearchParameter]] = {}
        parameters: list[SearchParameter] = []
        for category, values in config.items():
            found = find_search_parameters(values or {})
            if found:
                self._categories[category] = found
                parameters += found
        parameters.sort(key=lambda p: p.name)
        for before, after in zip(parameters, parameters[1:]):
            if before.name == after.name:
                raise ConfigError(
                    f"search parameter {after.name!r} is defined in two config categories; keep one"
                )
        self.parameters = [AxParameter(p) for p in parameters]
        self._by_name = {p.name: p for p in self.parameters}

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def ax_configs(self) -> list[Any]:
        return [p.ax_config() for p in self.parameters]

    def decode(self, ax_values: dict[str, Any]) -> dict[str, Any]:
        """Ax's parameterization -> ``{name: config value}``."""
        missing = [name for name in self.names if name not in ax_values]
        unknown = [name for name in ax_values if name not in self._by_name]
        if missing or unknown:
            raise ConfigError(f"Ax parameters {sorted(ax_values)} do not match the search space {self.names}")
        return {name: self._by_name[name].decode(ax_values[name]) for name in self.names}

    def fill(self, values: dict[str, Any]) -> Config:
        """The concrete config: each marker replaced by ``values[name]`` under its plain key."""
        filled: Config = {}
        for category, content in self.config.items():
            parameters = self._categories.get(category)
            if parameters:
                own = {p.name: values[p.name] for p in parameters}
                filled[category] = fill_search_parameters(content, own)
            else:
                filled[category] = copy.deepcopy(content)
        return filled

    def description(self) -> list[dict[str, Any]]:
        """JSON-safe description of every parameter (saved with the search, compared on resume)."""
        return [
            {
                "name": p.name,
                "kind": p.parameter.kind,
                "lower": p.parameter.lower,
                "upper": p.parameter.upper,
                "choices": p.parameter.choices,
            }
            for p in self.parameters
        ]
