"""Type and range checks of a resolved config's values, before anything is written or run.

- counts that must be >= 1 (batch sizes, epochs, iterations, intervals, layer and embedding sizes)
  and >= 0 (patience, data-loader workers); a boolean is never accepted as a number
  (YAML ``true`` is not 1); values that would exhaust memory have upper bounds (layer sizes,
  class counts, transform sizes in pixels, ``num_threads``);
- switches that must be booleans;
- known choices: ``mixed_precision`` (null, bf16, fp16), ``eval_metric_for_best_epoch`` (the
  metrics validation computes), ``device`` (auto, cpu, cuda, cuda:N -- a CUDA device must exist);
- pretrained weights (:func:`check_pretrained_models`, run once the data set is found): a trunk
  asking for weights that are not on disk fails naming the file to fetch (nothing is ever
  downloaded), before the experiment folder is made.
"""

from __future__ import annotations

import difflib
from typing import Any

from dmlbench.errors import ConfigError

POSITIVE_INTS = ("batch_size", "eval_batch_size", "num_epochs_train", "iterations_per_epoch", "save_interval")
NON_NEGATIVE_INTS = ("patience", "dataloader_num_workers", "eval_retrieval_examples", "eval_explanations")
OPTIONAL_POSITIVE_INTS = ("eval_chunk_size", "pre_resized_cache")
BOOLEANS = (
    "check_untrained_accuracy",
    "channels_last",
    "fast_data_path",
    "freeze_trunk_batchnorm",
    "eval_normalize_embeddings",
    "eval_binarize",
    "images_in_memory",
    "restart_optimizers_after_warmup",
    "lr_schedulers_wait_for_warmup",
)
MIXED_PRECISION = (None, "bf16", "fp16")
BASE_METRICS = ("mean_average_precision_at_r", "r_precision", "precision_at_1")
SPLITS = ("train", "val", "test")
#: Model keyword arguments that are sizes (every int in them must be >= 1).
SIZE_KWARGS = ("layer_sizes", "embedding_size", "embedding_dim", "hidden_size", "hidden_sizes", "num_classes")
#: Upper bounds of values that would otherwise exhaust memory before any useful error: one layer's
#: width (2^16: a 65536 x 65536 float layer is already 16 GiB), a class count, an image side in
#: pixels after a transform, CPU threads.
MAX_LAYER_SIZE = 65_536
MAX_CLASSES = 1_048_576
MAX_IMAGE_SIDE = 8_192
MAX_THREADS = 1_024


def is_int(value: Any) -> bool:
    """An int that is not a bool (``isinstance(True, int)`` holds in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _int_at_least(key: str, value: Any, minimum: int) -> None:
    if not is_int(value) or value < minimum:
        need = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{key}: expected {need}, got {value!r}")


def metric_choices(settings: dict[str, Any]) -> list[str]:
    """The metrics validation computes: MAP@R, R-Precision, P@1, Recall@K for ``eval_recall_at``,
    and their ``binary_`` twins when ``eval_binarize``."""
    names = list(BASE_METRICS) + [f"recall_at_{k}" for k in settings.get("eval_recall_at") or [] if is_int(k)]
    if settings.get("eval_binarize") is True:
        names += [f"binary_{name}" for name in names]
    return names


def check_device(value: Any) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; a CUDA device must exist on this machine."""
    if value is None or value == "auto":
        return
    import torch  # here, not at the top: commands answer --help and bad flags without torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"device: {value!r} is not a device; use auto, cpu, cuda or cuda:N") from error
    if device.type == "cpu":
        return
    if device.type != "cuda":
        raise ConfigError(f"device: {value!r} is not supported; use auto, cpu, cuda or cuda:N")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = device.index or 0
    if index >= count:
        have = f"only cuda:0 to cuda:{count - 1}" if count else "no CUDA device"
        raise ConfigError(f"device: {value!r} does not exist here ({have}); use auto or cpu")


def _check_model_sizes(where: str, kwargs: dict[str, Any]) -> None:
    for key in SIZE_KWARGS:
        value = kwargs.get(key)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        empty_allowed = key == "layer_sizes"  # an MLP without layers is the identity (PB's layer_sizes: [])
        if (not values and not empty_allowed) or not all(is_int(v) and v >= 1 for v in values):
            raise ConfigError(f"{where}.{key}: expected positive integer(s), got {value!r}")
        most = MAX_CLASSES if key == "num_classes" else MAX_LAYER_SIZE
        if max(values) > most:
            raise ConfigError(f"{where}.{key}: {max(values)} is over the largest size allowed, {most}")


def _check_transform_sizes(transforms: Any) -> None:
    """``size`` (and ``max_size``) of every transform: positive integers up to MAX_IMAGE_SIDE."""
    if not isinstance(transforms, dict):
        return
    for split, steps in transforms.items():
        for name, kwargs in (steps or {}).items() if isinstance(steps, dict) else ():
            for key in ("size", "max_size"):
                value: Any = kwargs.get(key) if isinstance(kwargs, dict) else None
                sizes = [v for v in (value if isinstance(value, list) else [value]) if is_int(v)]
                # other types are left to the transform's own check, which names them
                if not all(1 <= v <= MAX_IMAGE_SIDE for v in sizes):
                    raise ConfigError(
                        f"transforms.{split}.{name}.{key}: expected sizes from 1 to {MAX_IMAGE_SIDE} "
                        f"pixels, got {value!r}"
                    )


def check_pretrained_weights(cls: Any, kwargs: dict[str, Any]) -> None:
    """Raise :class:`PretrainedWeightsError` naming the file to fetch (and the command that fetches
    it) when ``cls(**kwargs)`` would need pretrained weights that are not on disk (BNInception and
    the torchvision-based trunks)."""
    from dmlbench.models.trunks import locate_weights
    from dmlbench.models.weight_files import BNINCEPTION, weights_for

    weights = weights_for(cls, kwargs)
    if weights is not None:
        owner = (
            BNINCEPTION
            if weights.name == BNINCEPTION
            else f"{cls.__name__}({kwargs.get('name', weights.name)})"
        )
        locate_weights(weights.file_name, weights.url, kwargs.get("weights_path"), owner)


def _model_specs(models: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(role, class name, kwargs) of each ``models`` entry."""
    if not isinstance(models, dict):
        return []
    return [
        (role, class_name, kwargs if isinstance(kwargs, dict) else {})
        for role, spec in models.items()
        if isinstance(spec, dict)
        for class_name, kwargs in spec.items()
    ]


def check_pretrained_models(settings: dict[str, Any]) -> None:
    """Every model of ``settings["models"]`` whose pretrained weights must be on disk: they are
    (else :class:`PretrainedWeightsError` naming the file and where to put it). Called once the data
    set is found, before the experiment folder is written."""
    from dmlbench.registry import lookup

    for _, class_name, kwargs in _model_specs(settings.get("models")):
        check_pretrained_weights(lookup("model", class_name), kwargs)


def validate_values(settings: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` for the first value of the wrong type or out of range."""
    for key in POSITIVE_INTS:
        if key in settings:
            _int_at_least(key, settings[key], 1)
    for key in NON_NEGATIVE_INTS:
        if key in settings:
            _int_at_least(key, settings[key], 0)
    for key in OPTIONAL_POSITIVE_INTS:
        if settings.get(key) is not None:
            _int_at_least(key, settings[key], 1)
    if settings.get("eval_dataloader_num_workers") is not None:
        _int_at_least("eval_dataloader_num_workers", settings["eval_dataloader_num_workers"], 0)
    if "seed" in settings:
        _int_at_least("seed", settings["seed"], 0)
    if settings.get("num_threads") is not None:
        _int_at_least("num_threads", settings["num_threads"], 1)
        if settings["num_threads"] > MAX_THREADS:
            raise ConfigError(
                f"num_threads: {settings['num_threads']} is over {MAX_THREADS}; use null for one per core"
            )
    _check_transform_sizes(settings.get("transforms"))
    for key in BOOLEANS:
        if key in settings and not isinstance(settings[key], bool):
            raise ConfigError(f"{key}: expected true or false, got {settings[key]!r}")
    recall_at = settings.get("eval_recall_at") or []
    if not isinstance(recall_at, list) or not all(is_int(k) and k >= 1 for k in recall_at):
        raise ConfigError(
            f"eval_recall_at: expected a list of positive integers such as [1, 2, 4, 8], got {recall_at!r}"
        )
    if settings.get("mixed_precision") not in MIXED_PRECISION:
        raise ConfigError(
            f"mixed_precision: expected null, bf16 or fp16, got {settings['mixed_precision']!r}"
        )
    if "eval_metric_for_best_epoch" in settings:
        metric, choices = settings["eval_metric_for_best_epoch"], metric_choices(settings)
        if metric not in choices:
            close = difflib.get_close_matches(str(metric), choices, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(
                f"eval_metric_for_best_epoch: {metric!r} is not a validation metric{hint} "
                f"(choices: {', '.join(choices)})"
            )
    splits = settings.get("splits_to_eval", ["val"])
    if not isinstance(splits, list) or not splits or any(split not in SPLITS for split in splits):
        raise ConfigError(f"splits_to_eval: expected a non-empty list of {', '.join(SPLITS)}, got {splits!r}")
    check_device(settings.get("device"))
    for role, class_name, kwargs in _model_specs(settings.get("models")):
        _check_model_sizes(f"models.{role}.{class_name}", kwargs)
