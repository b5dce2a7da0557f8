"""Pretrained weight files: which file a model needs, and fetching it into the ``torch.hub``
cache (``$TORCH_HOME/hub/checkpoints/``) with its checksum -- ``python -m dmlbench.data weights``.

A weight file is named as ``torch.hub`` names them, ``<model>-<first hex digits of its sha256>.pth``
(``resnet50-0676ba61.pth``, ``bn_inception-52deb4733.pth``); the download is checked against those
digits, as ``torch.hub.load_state_dict_from_url(check_hash=True)`` does. Nothing is downloaded at
run time: a run only looks for the file (:func:`dmlbench.models.trunks.locate_weights`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmlbench.data.download import RemoteFile, fetch
from dmlbench.errors import ConfigError

BNINCEPTION = "BNInception"
HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's HASH_REGEX


@dataclass(frozen=True)
class WeightFile:
    """One pretrained weight file: the name the command takes, the file, where it is published."""

    name: str
    file_name: str
    url: str

    def remote(self, mirror: str | None = None) -> RemoteFile:
        """As a download: ``mirror``/file name first when given, then the published URL."""
        match = HASH_IN_NAME.search(self.file_name)
        urls = (f"{mirror.rstrip('/')}/{self.file_name}", self.url) if mirror else (self.url,)
        return RemoteFile(self.file_name, urls, sha256_prefix=match.group(1) if match else None)


def bninception_weights() -> WeightFile:
    from dmlbench.models import bninception

    return WeightFile(BNINCEPTION, bninception.WEIGHTS_FILE, bninception.WEIGHTS_URL)


def torchvision_weights(model: str, pretrained: bool | str = True) -> WeightFile | None:
    """The file of torchvision ``model`` for ``pretrained`` (True = IMAGENET1K_V1 where it exists,
    as the trunks load it); None for ``pretrained: false``."""
    from dmlbench.models.trunks import _weights_entry

    entry = _weights_entry(model, pretrained)
    if entry is None:
        return None
    name = model if pretrained is True else f"{model}:{entry.name}"
    return WeightFile(name, Path(entry.url).name, entry.url)


def weights_for(cls: Any, kwargs: dict[str, Any]) -> WeightFile | None:
    """The weight file ``cls(**kwargs)`` loads (from the hub cache, or from ``weights_path`` when
    given); None for none, or for an unknown model name (the model itself reports it)."""
    from dmlbench.models.bninception import BNInception
    from dmlbench.models.multilevel import MultiLevelTrunk
    from dmlbench.models.trunks import TorchvisionTrunk

    pretrained = kwargs.get("pretrained", _default(cls, "pretrained", False))
    if not isinstance(cls, type):
        return None
    if issubclass(cls, BNInception):
        return bninception_weights() if pretrained else None
    if issubclass(cls, (TorchvisionTrunk, MultiLevelTrunk)):
        try:
            return torchvision_weights(kwargs.get("name", _default(cls, "name", None)), pretrained)
        except (ValueError, KeyError, TypeError, ConfigError):
            return None
    return None


def _default(cls: Any, name: str, fallback: Any) -> Any:
    import inspect

    try:
        parameter = inspect.signature(cls).parameters.get(name)
    except (TypeError, ValueError):
        return fallback
    return (
        fallback if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default
    )


def weights_by_name(name: str) -> WeightFile:
    """``BNInception``, a torchvision model (``resnet50``: its IMAGENET1K_V1 weights),
    ``model:WEIGHTS`` (``resnet50:IMAGENET1K_V2``) or a weight file's name
    (``resnet50-11ad3fa6.pth``); a :class:`ConfigError` with the nearest names otherwise."""
    import torchvision

    if name.lower() == BNINCEPTION.lower() or name == bninception_weights().file_name:
        return bninception_weights()
    models = torchvision.models.list_models(module=torchvision.models)
    model, _, weights = name.partition(":")
    if model in models:
        found = torchvision_weights(model, weights or True)
        if found is None:
            raise ConfigError(f"weights {name}: {model} has no pretrained weights")
        return found
    if name.endswith(".pth"):
        for candidate in models:
            for entry in torchvision.models.get_model_weights(candidate):
                found_file = (
                    torchvision_weights(candidate, entry.name) if Path(entry.url).name == name else None
                )
                if found_file is not None:
                    return found_file
    close = difflib.get_close_matches(model, [BNINCEPTION, *models], n=3, cutoff=0.5)
    hint = f"; nearest: {', '.join(close)}" if close else ""
    raise ConfigError(
        f"weights {name}: not BNInception, a torchvision model (e.g. resnet50, resnet50:IMAGENET1K_V2) "
        f"or one of their weight files{hint}"
    )


def weights_of_configs(model_files: Iterable[Path]) -> list[WeightFile]:
    """Every weight file the ``models`` of these config_models YAML files load (each once, in
    order): what ``python -m dmlbench.data weights`` fetches by default."""
    from dmlbench.config.yaml_io import load_yaml_file
    from dmlbench.registry import lookup

    found: dict[str, WeightFile] = {}
    for path in model_files:
        models = _plain(load_yaml_file(path) or {}).get("models")
        for spec in _plain(models).values() if isinstance(models, dict) else []:
            for class_name, kwargs in _plain(spec).items() if isinstance(spec, dict) else []:
                try:
                    cls = lookup("model", class_name)
                except ConfigError:
                    continue
                kwargs = _plain(kwargs) if isinstance(kwargs, dict) else {}
                weights = weights_for(cls, kwargs)
                if weights is not None and kwargs.get("weights_path") is None:
                    found.setdefault(weights.file_name, weights)
    return list(found.values())


def _plain(mapping: dict[str, Any]) -> dict[str, Any]:
    """Keys without their ``~SUFFIX~`` (``models~OVERRIDE~`` -> ``models``)."""
    return {str(key).split("~")[0]: value for key, value in mapping.items()}


def shipped_model_files() -> list[Path]:
    """config_models files of the built-in defaults and of every shipped exp_config."""
    package = Path(__file__).resolve().parents[1]
    return sorted((package / "configs" / "config_models").glob("*.yaml")) + sorted(
        (package / "exp_configs").glob("*/configs/config_models*.yaml")
    )


def fetch_weights(
    weights: WeightFile, folder: Path, mirror: str | None = None, progress: bool = True, timeout: float = 60.0
) -> Path:
    """Download ``weights`` into ``folder`` (resumable, checksum checked, kept when already
    there and intact); -> its path. Raises :class:`dmlbench.errors.DatasetError` on failure."""
    return fetch(
        weights.remote(mirror), folder, dataset=weights.name, progress=progress, timeout=timeout
    ).path
