"""powerful-benchmarker 0.9's values inside dmlbench keys, translated (docs/protocol.md, "Coming from
powerful-benchmarker").

- :func:`refuse_pb_features`: roles and parts that belong to PB features dmlbench does not have
  (``metric_loss_0`` of cascaded embeddings, ``synth_loss`` / ``generator`` of DAML,
  ``augmentation1`` of unsupervised training) -> one line naming the feature;
- TrainWithClassifier's ``models.classifier`` / ``loss_funcs.classifier_loss`` -> the ``Classifier``
  training plugin;
- :func:`translate_values`: a resolved config's PB values -> dmlbench's: the trunk ``bninception``
  (``pretrained: imagenet``) -> ``BNInception`` (``pretrained: true``), torchvision's lowercase names
  -> ``TorchvisionTrunk``, the split manager's ``hierarchy_level`` / ``data_and_label_getter_keys``
  (PB's defaults only), PB's factories, and the string form of transform arguments
  (``scale: 0.16 1`` -> ``[0.16, 1]``, as PB's easy-module-attribute-getter converts them).

Each translation adds one notice. Pure Python (no torch).
"""

from __future__ import annotations

import re
from typing import Any

from dmlbench.config.pb_vocabulary import SEE, refuse
from dmlbench.errors import ConfigError

#: Role / part names of PB features dmlbench does not have (regular expressions) -> feature.
FEATURE_ROLES: dict[str, tuple[tuple[str, str], ...]] = {
    "loss_funcs": (
        (r"metric_loss_\d+", "CascadedEmbeddings"),
        (r"synth_loss|g_adv_loss|g_hard_loss|g_reg_loss", "DeepAdversarialMetricLearning"),
    ),
    "optimizers": ((r"generator_optimizer", "DeepAdversarialMetricLearning"),),
    "models": ((r"generator", "DeepAdversarialMetricLearning"),),
    "transforms": ((r"augmentation\d+", "UnsupervisedEmbeddingsUsingAugmentations"),),
}
#: PB's factories (config_factories/default.yaml): groups dmlbench builds without a factory.
PB_FACTORIES = {
    "loss": "LossFactory",
    "miner": "MinerFactory",
    "sampler": "SamplerFactory",
    "optimizer": "OptimizerFactory",
    "tester": "TesterFactory",
    "trainer": "TrainerFactory",
    "transform": "TransformFactory",
    "split_manager": "SplitManagerFactory",
    "record_keeper": "RecordKeeperFactory",
    "hook": "HookFactory",
    "aggregator": "AggregatorFactory",
    "ensemble": "EnsembleFactory",
}
#: PB split-manager arguments dmlbench's split managers do not take: their PB default.
PB_SPLIT_KWARGS = {"hierarchy_level": 0, "data_and_label_getter_keys": ["data", "label"]}


def _base(key: Any) -> str:
    return str(key).split("~", 1)[0]


def refuse_pb_features(fragment: dict[str, Any], where: str = "") -> None:
    """Raise :class:`ConfigError` naming the PB feature whose roles or parts ``fragment`` uses."""
    prefix = f"{where}: " if where else ""
    for key, value in fragment.items():
        patterns = FEATURE_ROLES.get(_base(key))
        if not patterns or not isinstance(value, dict):
            continue
        for role in value:
            for pattern, feature in patterns:
                if re.fullmatch(pattern, _base(role)):
                    raise refuse(feature, f"{prefix}{_base(key)}.{_base(role)}")


def pb_string_to_value(text: str) -> Any:
    """PB's conversion of a transform argument (easy-module-attribute-getter's
    ``try_convert_to_list_of_numbers``): split on spaces, each part an int, else a float, else kept;
    one part is a scalar. ``"0.16 1"`` -> ``[0.16, 1]``, ``"256"`` -> ``256``, ``"bilinear"`` kept."""

    def number(part: str) -> Any:
        for convert in (int, float):
            try:
                return convert(part)
            except ValueError:
                pass
        return part

    parts = [number(part) for part in text.split(" ")]
    return parts[0] if len(parts) == 1 else parts


def _translate_transforms(transforms: Any, notices: list[str]) -> None:
    if not isinstance(transforms, dict):
        return
    for part, steps in transforms.items():
        for name, kwargs in (steps or {}).items() if isinstance(steps, dict) else ():
            for key, value in (kwargs or {}).items() if isinstance(kwargs, dict) else ():
                if isinstance(value, str):
                    converted = pb_string_to_value(value)
                    if converted != value:
                        kwargs[key] = converted
                        notices.append(f"transforms.{part}.{name}.{key}: {value!r} -> {converted!r}")


def _trunk(spec: Any, notices: list[str]) -> Any:
    if not isinstance(spec, dict) or len(spec) != 1:
        return spec
    ((name, kwargs),) = spec.items()
    kwargs = dict(kwargs or {})
    where = f"models.trunk.{name}"
    if name == "bninception":
        pretrained = kwargs.pop("pretrained", None)
        if pretrained not in (None, "imagenet"):
            raise ConfigError(f"{where}.pretrained: {pretrained!r}: only imagenet weights exist; {SEE}")
        kwargs["pretrained"] = pretrained == "imagenet"
        notices.append(f"{where} -> BNInception (pretrained: {pretrained} -> {kwargs['pretrained']})")
        return {"BNInception": kwargs}
    if isinstance(name, str) and name[:1].islower() and _is_torchvision_model(name):
        pretrained = kwargs.pop("pretrained", False)
        notices.append(f"{where} -> TorchvisionTrunk {{name: {name}}} (its classifier removed, as in PB)")
        return {"TorchvisionTrunk": {"name": name, "pretrained": bool(pretrained), **kwargs}}
    return spec


def _is_torchvision_model(name: str) -> bool:
    import torchvision.models  # only for a lowercase trunk name

    return name in torchvision.models.list_models(module=torchvision.models)


def _split_manager(spec: Any, notices: list[str]) -> None:
    if not isinstance(spec, dict) or len(spec) != 1:
        return
    ((name, kwargs),) = spec.items()
    if not isinstance(kwargs, dict):
        return
    for key, default in PB_SPLIT_KWARGS.items():
        if key in kwargs:
            where = f"split_manager.{name}.{key}"
            if kwargs[key] != default:
                raise ConfigError(f"{where}: {kwargs[key]!r} is not supported (only {default!r}); {SEE}")
            del kwargs[key]
            notices.append(f"{where}: dropped (PB's default; dmlbench reads flat labels)")


def _factories(factories: Any, notices: list[str]) -> None:
    if not isinstance(factories, dict):
        return
    for group in list(factories):
        expected = PB_FACTORIES.get(str(group))
        if expected is None:
            continue
        spec = factories[group]
        name = next(iter(spec)) if isinstance(spec, dict) and len(spec) == 1 else spec
        if name != expected:
            raise ConfigError(
                f"factories.{group}: {name!r} has no dmlbench equivalent (PB's {expected} only); {SEE}"
            )
        del factories[group]
        notices.append(f"factories.{group}: dropped (dmlbench builds {group}s without a factory)")


def _classifier(config: dict[str, dict[str, Any]], notices: list[str]) -> None:
    """PB's TrainWithClassifier parts -- ``models.classifier`` (an MLP), ``loss_funcs.classifier_loss``,
    ``loss_weights.classifier_loss`` -- as the ``Classifier`` training plugin (plugins/classifier_head)."""
    models = config.get("config_models", {}).get("models")
    losses = config.get("config_loss_and_miners", {})
    loss_funcs, weights = losses.get("loss_funcs") or {}, losses.get("loss_weights") or {}
    head = models.pop("classifier", None) if isinstance(models, dict) else None
    loss = loss_funcs.pop("classifier_loss", None) if isinstance(loss_funcs, dict) else None
    weight = weights.pop("classifier_loss", 1) if isinstance(weights, dict) else 1
    if head is None:
        if loss is not None:
            notices.append(
                "loss_funcs.classifier_loss: dropped (no models.classifier, so no logits, as in PB)"
            )
        return
    name, kwargs = next(iter(head.items())) if isinstance(head, dict) and len(head) == 1 else (head, None)
    if name != "MLP":
        raise ConfigError(f"models.classifier: {name!r}: only an MLP classifier is translated; {SEE}")
    plugin = {"layer_sizes": list((kwargs or {}).get("layer_sizes") or []), "weight": weight}
    if loss is not None:
        plugin["loss"] = loss
    plugins = losses.setdefault("training_plugins", {}) or {}
    plugins["Classifier"] = plugin
    losses["training_plugins"] = plugins
    notices.append(
        "models.classifier, loss_funcs.classifier_loss, loss_weights.classifier_loss -> "
        "training_plugins.Classifier (trained by optimizers.classifier_optimizer)"
    )


def translate_values(config: dict[str, dict[str, Any]]) -> list[str]:
    """Translate the PB values of a resolved config (by category) in place; return the notices."""
    notices: list[str] = []
    _classifier(config, notices)
    for values in config.values():
        refuse_pb_features(values)
        models = values.get("models")
        if isinstance(models, dict) and "trunk" in models:
            models["trunk"] = _trunk(models["trunk"], notices)
        if "split_manager" in values:
            _split_manager(values["split_manager"], notices)
        if "factories" in values:
            _factories(values["factories"], notices)
        if "transforms" in values:
            _translate_transforms(values["transforms"], notices)
    return notices
