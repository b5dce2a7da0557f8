"""The search space: config markers (``~BAYESIAN~`` ...) as Ax parameters, and Ax's proposals
back as concrete configs.

Each marker becomes one Ax parameter named by the key's dotted path without the suffix
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
from dataclasses import dataclass
from typing import Any

from dmlbench.config.search_space import SearchParameter, fill_search_parameters, find_search_parameters
from dmlbench.errors import ConfigError

Config = dict[str, dict[str, Any]]


def _choice_type(values: list) -> str | None:
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
        return self.parameter.kind == "choice" and _choice_type(self.parameter.choices) is None

    def ax_config(self) -> Any:
        """The ``ax.RangeParameterConfig`` / ``ax.ChoiceParameterConfig`` for this parameter."""
        from ax import ChoiceParameterConfig, RangeParameterConfig

        p = self.parameter
        if p.kind == "choice":
            value_type = _choice_type(p.choices)
            if value_type is None:
                values: list = [str(i) for i in range(len(p.choices))]
                return ChoiceParameterConfig(name=p.name, values=values, parameter_type="str", is_ordered=False)
            values = [float(v) for v in p.choices] if value_type == "float" else list(p.choices)
            return ChoiceParameterConfig(name=p.name, values=values, parameter_type=value_type,
                                         is_ordered=value_type in ("int", "float"))
        if p.kind == "int":
            return RangeParameterConfig(name=p.name, bounds=(int(p.lower), int(p.upper)), parameter_type="int")
        return RangeParameterConfig(name=p.name, bounds=(float(p.lower), float(p.upper)), parameter_type="float",
                                    scaling="log" if p.kind == "log_float" else "linear")

    def decode(self, value: Any) -> Any:
        """The config value for Ax's ``value`` of this parameter."""
        p = self.parameter
        if p.kind == "choice":
            if self.encoded_by_position:
                return p.choices[int(value)]
            for choice in p.choices:  # the config's own object (2, not 2.0)
                if isinstance(choice, bool) == isinstance(value, bool) and choice == value:
                    return choice
            raise ConfigError(f"search parameter {p.name}: Ax proposed {value!r}, not one of {p.choices}")
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
                raise ConfigError(f"search parameter {after.name!r} is defined in two config categories; keep one")
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
            {"name": p.name, "kind": p.parameter.kind, "lower": p.parameter.lower, "upper": p.parameter.upper,
             "choices": p.parameter.choices}
            for p in self.parameters
        ]
