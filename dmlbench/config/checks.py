"""Check a resolved config before anything is written: every class name must resolve through
the registry, and the keys the runner needs must be present."""

from __future__ import annotations

from typing import Any

from dmlbench.config.value_checks import validate_values
from dmlbench.errors import ConfigError
from dmlbench.registry import check_keywords

#: (config key, registry kind, whether the value is a mapping of roles to specs)
CLASS_SLOTS: tuple[tuple[str, str, bool], ...] = (
    ("dataset", "dataset", False),
    ("split_manager", "split_manager", False),
    ("sampler", "sampler", False),
    ("models", "model", True),
    ("loss_funcs", "loss", True),
    ("mining_funcs", "miner", True),
    ("optimizers", "optimizer", True),
    ("lr_schedulers", "lr_scheduler", True),
    ("training_plugins", "training_plugin", False),
)

REQUIRED_KEYS = (
    "dataset",
    "split_manager",
    "models",
    "loss_funcs",
    "sampler",
    "optimizers",
    "transforms",
    "batch_size",
    "iterations_per_epoch",
    "num_epochs_train",
    "save_interval",
    "patience",
    "eval_metric_for_best_epoch",
)


def validate_config(settings: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` for a missing key, an unknown class name or a keyword argument
    its class rejects (with suggestions)."""
    for key in REQUIRED_KEYS:
        if key not in settings:
            raise ConfigError(f"config key {key!r} is missing (was it deleted with ~DELETE~?)")
    for key, kind, by_role in CLASS_SLOTS:
        value = settings.get(key)
        if not value:
            continue
        if key == "training_plugins":
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a mapping {{PluginName: {{kwargs}}}}, got {value!r}")
            for name, kwargs in value.items():
                check_keywords(kind, {name: kwargs}, key)
            continue
        if by_role:
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{key}: expected a mapping of roles to {{ClassName: {{kwargs}}}}, got {value!r}"
                )
            for role, spec in value.items():
                check_keywords(kind, spec, f"{key}.{role}")
        else:
            check_keywords(kind, value, key)
    transforms = settings["transforms"]
    if not isinstance(transforms, dict):
        raise ConfigError(f"transforms: expected {{train: {{...}}, eval: {{...}}}}, got {transforms!r}")
    for split, steps in transforms.items():
        for name, kwargs in (steps or {}).items():
            check_keywords("transform", {name: kwargs}, f"transforms.{split}")
    validate_values(settings)  # types, ranges, choices, devices, pretrained weights on disk
