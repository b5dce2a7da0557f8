"""powerful-benchmarker 0.9's config keys, translated into dmlbench's (docs/protocol.md, "Coming from
powerful-benchmarker").

A config fragment -- a config file's content or the command line's overrides -- may use the keys of
powerful-benchmarker 0.9 (PB): ``trainer: {MetricLossOnly: {batch_size: 32, ...}}``, ``tester``,
``api_parser``, ``aggregator``, ``ensemble``, ``hook_container`` and PB's run-wide switches, also with
PB's suffixes (``trainer~APPLY~2: {batch_size: 256}``, ``tester~APPLY~2: {...}``,
``trainer~SWAP~1: {Name: }``). :func:`translate_fragment` rewrites them as dmlbench's flat keys
(``batch_size: 256``), one notice per translated key. A PB feature dmlbench does not have is refused
in one line naming the feature (:data:`REFUSED_FEATURES`).

Pure Python (no torch): used before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dmlbench.config.keys import effective_spec
from dmlbench.errors import ConfigError

SEE = "see docs/protocol.md, 'Coming from powerful-benchmarker'"

#: PB features dmlbench does not have: the name PB gives them -> what they are.
REFUSED_FEATURES: dict[str, str] = {
    "CascadedEmbeddings": "cascaded embeddings (powerful-benchmarker's CascadedEmbeddings trainer: "
    "one loss per trunk layer of layers_to_extract)",
    "DeepAdversarialMetricLearning": "DAML (powerful-benchmarker's DeepAdversarialMetricLearning trainer: "
    "a generator of synthetic hard negatives)",
    "UnsupervisedEmbeddingsUsingAugmentations": "unsupervised training from augmentations "
    "(powerful-benchmarker's UnsupervisedEmbeddingsUsingAugmentations trainer)",
}
ACCEPTED_TRAINERS = ("MetricLossOnly", "TrainWithClassifier")
ACCEPTED_TESTERS = ("GlobalEmbeddingSpaceTester",)


def refuse(feature: str, where: str) -> ConfigError:
    """The one-line refusal of a PB feature dmlbench does not have."""
    return ConfigError(f"{where}: {REFUSED_FEATURES[feature]} is not available in dmlbench; {SEE}")


# ------------------------------------------------------------------------------------------------
# Options of PB's trainer and tester -> dmlbench keys.
# An option maps to a dmlbench key, to None (dropped: dmlbench's fixed behaviour), or to a check
# that returns an error reason for values dmlbench cannot honour.

Option = tuple[str | None, Callable[[Any], str | None] | None, str]


def _only(*allowed: Any) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"only {' or '.join(repr(a) for a in allowed)} is supported"

    return check


TRAINER_OPTIONS: dict[str, Option] = {
    "batch_size": ("batch_size", None, ""),
    "iterations_per_epoch": ("iterations_per_epoch", None, ""),
    "dataloader_num_workers": ("dataloader_num_workers", None, ""),
    "freeze_trunk_batchnorm": ("freeze_trunk_batchnorm", None, ""),
    "loss_weights": ("loss_weights", None, ""),
    "label_hierarchy_level": (None, _only(0), "labels are flat (level 0)"),
    "set_min_label_to_zero": (None, _only(True), "labels are always renumbered from 0"),
    "freeze_these": (None, _only([], None), "use frozen_for_epochs to freeze a part"),
    "data_device": (None, _only(None), "the device is the device key"),
    "dtype": (None, _only(None), "mixed precision is the mixed_precision key"),
}
TESTER_OPTIONS: dict[str, Option] = {
    "batch_size": ("eval_batch_size", None, ""),
    "normalize_embeddings": ("eval_normalize_embeddings", None, ""),
    "dataloader_num_workers": ("eval_dataloader_num_workers", None, ""),
    "reference_set": (None, _only("compared_to_self"), "each split is retrieved against itself"),
    "use_trunk_output": (None, _only(False), "the embedder's output is evaluated"),
    "pca": (None, _only(None), "embeddings are evaluated without PCA"),
    "label_hierarchy_level": (None, _only(0), "labels are flat (level 0)"),
    "accuracy_calculator": (
        None,
        _only({"AccuracyCalculator": None}, {"AccuracyCalculator": {}}, None),
        "the metrics are P@1, R-Precision, MAP@R (eval_recall_at adds Recall@K)",
    ),
    "visualizer": (None, _only({}, None), "no embedding plots are drawn"),
    "data_device": (None, _only(None), "the device is the device key"),
    "dtype": (None, _only(None), "mixed precision is the mixed_precision key"),
}

#: PB keys without a setting in dmlbench (its behaviour is fixed): key -> what dmlbench does.
DROPPED_KEYS: dict[str, str] = {
    "skip_eval_if_already_done": "an --evaluate command tests what it is asked to",
    "skip_ensemble_eval_if_already_done": "an --evaluate_ensemble command tests what it is asked to",
    "log_data_to_tensorboard": "TensorBoard logs are always written",
    "save_figures_on_tensorboard": "figures are in meta/report.html",
    "save_lists_in_db": "records.db holds the metrics",
    "override_required_compatible_factories": "there are no compatible-factory requirements",
}


#: Top-level keys of powerful-benchmarker that :func:`translate_fragment` reads (translated or refused).
PB_KEYS = (
    "trainer",
    "tester",
    "api_parser",
    "hook_container",
    "aggregator",
    "ensemble",
    "layers_to_extract",
    *DROPPED_KEYS,
)


def _options(
    owner: str, options: Any, table: dict[str, Option], where: str, notices: list[str]
) -> dict[str, Any]:
    """``{batch_size: 32, ...}`` of a PB trainer/tester -> dmlbench keys (suffixes kept)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: expected a mapping of {owner} options, got {options!r}")
    result: dict[str, Any] = {}
    for key, value in options.items():
        base, _, suffix = str(key).partition("~")
        suffix = f"~{suffix}" if suffix else ""
        if base not in table:
            raise ConfigError(
                f"{where}.{base}: powerful-benchmarker's {owner} option {base!r} has no dmlbench "
                f"equivalent (translated: {', '.join(table)}); {SEE}"
            )
        target, check, reason = table[base]
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{where}.{base}: {value!r} is not supported ({problem}; {reason}); {SEE}")
        if target is None:
            notices.append(f"{where}.{base}: dropped ({reason})")
            continue
        if target == "loss_weights" and value is None:
            value = {}
        result[target + suffix] = value
        notices.append(f"{where}.{base} -> {target}")
    return result


def _class_and_options(value: Any, where: str, kind: str) -> tuple[str | None, Any]:
    """``{Name: {options}}`` (or ``{Name: null}``) -> (Name, options)."""
    if value is None:
        return None, None
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(f"{where}: expected one {{{kind}Name: {{options}}}} entry, got {value!r}")
    ((name, options),) = value.items()
    return str(name), options


def _check_class(name: str | None, accepted: tuple[str, ...], where: str, kind: str) -> None:
    if name is None or name in accepted:
        return
    if name in REFUSED_FEATURES:
        raise refuse(name, where)
    raise ConfigError(
        f"{where}: powerful-benchmarker {kind} {name!r} has no dmlbench equivalent "
        f"(accepted: {', '.join(accepted)}); {SEE}"
    )


def _engine(
    key: Any, value: Any, kind: str, accepted: tuple[str, ...], table: dict[str, Option], notices: list[str]
) -> dict[str, Any]:
    """A ``trainer`` / ``tester`` key in any of PB's forms -> dmlbench keys."""
    spec = effective_spec(key, value, ())
    where = str(key)
    if spec.kind == "apply" and spec.depth == 2:
        return _options(kind, value, table, where, notices)
    if spec.kind == "swap" and spec.depth == 1 and isinstance(value, dict):
        result: dict[str, Any] = {}
        for first, second in value.items():
            name = second if isinstance(second, str) else first
            _check_class(str(name), accepted, where, kind)
            if isinstance(second, dict):
                result.update(_options(kind, second, table, f"{where}.{name}", notices))
        notices.append(f"{where}: {kind} {', '.join(str(k) for k in value)} (dmlbench's training loop)")
        return result
    if spec.kind in ("plain", "override"):
        name, options = _class_and_options(value, where, kind)
        _check_class(name, accepted, where, kind)
        return _options(kind, options, table, f"{spec.name}.{name}", notices)
    raise ConfigError(
        f"{where}: this form of powerful-benchmarker's {kind} key is not translated (use "
        f"{spec.name}~APPLY~2: {{option: value}} or {spec.name}: {{{accepted[0]}: {{...}}}}); {SEE}"
    )


def _api_parser(value: Any, notices: list[str]) -> dict[str, Any]:
    name, _ = _class_and_options(value, "api_parser", "APIParser") if value else (None, None)
    if name is not None:
        trainer = name[3:] if name.startswith("API") else name
        if trainer in REFUSED_FEATURES:
            raise refuse(trainer, "api_parser")
        if trainer not in (*ACCEPTED_TRAINERS, "BaseAPIParser"):
            raise ConfigError(f"api_parser: {name!r} has no dmlbench equivalent; {SEE}")
    notices.append("api_parser: dropped (dmlbench has one training loop)")
    return {}


def _hook_container(value: Any, notices: list[str]) -> dict[str, Any]:
    name, options = _class_and_options(value, "hook_container", "HookContainer")
    if name not in (None, "HookContainer"):
        raise ConfigError(f"hook_container: {name!r} has no dmlbench equivalent; {SEE}")
    result: dict[str, Any] = {}
    for key, option in (options or {}).items():
        where = f"hook_container.{name}.{key}"
        if key == "primary_metric":
            result["eval_metric_for_best_epoch"] = option
            notices.append(f"{where} -> eval_metric_for_best_epoch")
        elif (key, option) in (("validation_split_name", "val"), ("save_models", True)):
            notices.append(f"{where}: dropped (the val split selects the best checkpoint, which is saved)")
        else:
            raise ConfigError(f"{where}: {option!r} is not supported; {SEE}")
    return result


def _fixed(key: str, value: Any, accepted: dict[str, dict[str, Any]], what: str, notices: list[str]) -> None:
    """aggregator / ensemble: only PB's defaults, which are what dmlbench always does."""
    name, options = _class_and_options(value, key, key.capitalize())
    if name is not None:
        if name not in accepted:
            raise ConfigError(
                f"{key}: {name!r} has no dmlbench equivalent (only {', '.join(accepted)}); {SEE}"
            )
        for option, option_value in (options or {}).items():
            if accepted[name].get(option, object()) != option_value:
                raise ConfigError(f"{key}.{name}.{option}: {option_value!r} is not supported ({what}); {SEE}")
    notices.append(f"{key}: dropped ({what})")


def translate_fragment(fragment: dict[str, Any], where: str = "") -> tuple[dict[str, Any], list[str]]:
    """``fragment`` with PB's keys replaced by dmlbench's, and one notice per translated key.

    Keys dmlbench knows pass unchanged (in their order); PB features dmlbench does not have raise
    :class:`ConfigError` naming the feature. ``where`` prefixes the notices (a file, or "")."""
    result: dict[str, Any] = {}
    notices: list[str] = []
    for key, value in fragment.items():
        base = str(key).split("~", 1)[0]
        if base == "trainer":
            result.update(_engine(key, value, "trainer", ACCEPTED_TRAINERS, TRAINER_OPTIONS, notices))
        elif base == "tester":
            result.update(_engine(key, value, "tester", ACCEPTED_TESTERS, TESTER_OPTIONS, notices))
        elif base == "api_parser":
            result.update(_api_parser(value, notices))
        elif base == "hook_container":
            result.update(_hook_container(value, notices))
        elif base == "aggregator":
            _fixed(
                key, value, {"MeanAggregator": {"split_to_aggregate": "val"}}, "means over the folds", notices
            )
        elif base == "ensemble":
            _fixed(
                key,
                value,
                {"ConcatenateEmbeddings": {"normalize_embeddings": True, "use_trunk_output": False}},
                "--evaluate_ensemble concatenates the normalised fold embeddings",
                notices,
            )
        elif base in DROPPED_KEYS:
            notices.append(f"{base}: dropped ({DROPPED_KEYS[base]})")
        elif base == "layers_to_extract":
            raise refuse("CascadedEmbeddings", str(key))
        else:
            result[key] = value
    prefix = f"{where}: " if where else ""
    return result, [prefix + notice for notice in notices]
