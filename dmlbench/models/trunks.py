"""Pretrained trunks from torchvision, and offline loading of pretrained weight files.

A trunk maps images ``[B, 3, H, W]`` to pooled features ``[B, num_features]`` and declares
``num_features`` and ``input_normalization`` (the mean/std its weights expect).

Weights are never downloaded at run time: this code looks for the file under
``TORCH_HOME/hub/checkpoints/`` (``~/.cache/torch/hub/checkpoints/`` by default, the folder
``torch.hub`` itself uses) or at an explicit ``weights_path``, and otherwise raises
:class:`PretrainedWeightsError` naming the file, the command that fetches it
(``python -m dmlbench.data weights``, :mod:`dmlbench.models.weight_files`) and its URL.
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.models.batchnorm import freeze_batchnorm
from dmlbench.models.pooling import build_pooling
from dmlbench.registry import register

IMAGENET_NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


class PretrainedWeightsError(ConfigError):
    """Pretrained weights that are not on disk (nothing is downloaded) or do not fit the model."""


# --------------------------------------------------------------------------- weight files


def hub_checkpoint_dir() -> Path:
    """Where ``torch.hub`` keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def fetch_command(file_name: str) -> str:
    """The command that fetches ``file_name`` into the hub cache (with its checksum)."""
    name = "BNInception" if file_name.startswith("bn_inception-") else file_name
    return f"python -m dmlbench.data weights {name}"


def locate_weights(file_name: str, url: str, weights_path: str | Path | None, owner: str) -> Path:
    """The weights file to load: ``weights_path`` if given, else ``file_name`` in the hub cache."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise PretrainedWeightsError(
                f"{owner}: weights_path {path} does not exist; point it at a copy of {file_name} ({url})"
            )
        return path
    path = hub_checkpoint_dir() / file_name
    if not path.is_file():
        raise PretrainedWeightsError(
            f"{owner}: pretrained weights {file_name} not found in {path.parent} (nothing is downloaded "
            f"at run time); fetch them with `{fetch_command(file_name)}` (or fetch {url} into that folder, "
            f"set TORCH_HOME, or pass weights_path: /path/to/{file_name}), or use pretrained: false"
        )
    return path


def load_state_dict_file(path: Path, owner: str) -> dict[str, Tensor]:
    """Tensors of a saved state dict (plain, or under ``state_dict``/``model``; ``module.`` stripped)."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        raise PretrainedWeightsError(
            f"{owner}: cannot read weights file {path} ({type(error).__name__}: {error}); "
            "it may be truncated: delete it and fetch it again"
        ) from error
    for wrapper_key in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper_key), dict):
            loaded = loaded[wrapper_key]
    if not isinstance(loaded, dict) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise PretrainedWeightsError(f"{owner}: {path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in loaded.items()}


def check_state_dict_fits(model: nn.Module, state: dict[str, Tensor], path: Path, owner: str) -> None:
    """Raise a one-line error if ``state`` has other keys or shapes than ``model``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} of another shape (e.g. {k}: {tuple(state[k].shape)} in the file, "
                f"{tuple(expected[k].shape)} in the model)"
            )
        raise PretrainedWeightsError(f"{owner}: {path} does not fit the model: {'; '.join(parts)}")


# --------------------------------------------------------------------------- torchvision


def _weights_entry(name: str, pretrained: bool | str) -> Any:
    """The torchvision weights enum member for ``pretrained`` (None for random weights).

    ``True`` means ``IMAGENET1K_V1`` where it exists (the weights the DML papers used; torchvision's
    ``DEFAULT`` is a newer recipe for some models, e.g. ResNet50 ``IMAGENET1K_V2``); a string
    names a member (``"IMAGENET1K_V2"``, ``"DEFAULT"``).
    """
    if pretrained is False or pretrained is None:
        return None
    enum = torchvision.models.get_model_weights(name)
    members = [member.name for member in enum]
    choice = "IMAGENET1K_V1" if pretrained is True and "IMAGENET1K_V1" in members else pretrained
    if choice is True or choice == "DEFAULT":
        return enum.DEFAULT
    if choice not in members:
        raise ConfigError(
            f"TorchvisionTrunk({name}): unknown pretrained weights {pretrained!r}; choose true, false, "
            f"DEFAULT or one of {', '.join(members)}"
        )
    return enum[choice]


def _feature_body(model: nn.Module, name: str) -> nn.Module:
    """The part of a torchvision classifier that produces its last feature map ``[B, C, h, w]``."""
    children = dict(model.named_children())
    if {"layer4", "fc"} <= children.keys():  # ResNet, ResNeXt, Wide ResNet
        keep = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        return nn.Sequential(OrderedDict((key, children[key]) for key in keep))
    if {"stem", "trunk_output"} <= children.keys():  # RegNet
        return nn.Sequential(OrderedDict(stem=children["stem"], trunk_output=children["trunk_output"]))
    if {"features", "norm", "permute"} <= children.keys():  # Swin: NHWC blocks, then to NCHW
        return nn.Sequential(
            OrderedDict(features=children["features"], norm=children["norm"], permute=children["permute"])
        )
    if "conv5" in children and "stage4" in children:  # ShuffleNetV2
        keep = ["conv1", "maxpool", "stage2", "stage3", "stage4", "conv5"]
        return nn.Sequential(OrderedDict((key, children[key]) for key in keep))
    if "layers" in children and "classifier" in children:  # MNASNet
        return nn.Sequential(OrderedDict(layers=children["layers"]))
    if "features" in children:  # VGG, AlexNet, SqueezeNet, DenseNet, MobileNet, EfficientNet, ConvNeXt
        body = OrderedDict(features=children["features"])
        if isinstance(model, torchvision.models.DenseNet):
            body["relu"] = nn.ReLU(inplace=False)  # DenseNet applies a ReLU after its features
        return nn.Sequential(body)
    raise ConfigError(
        f"TorchvisionTrunk: {name} has no convolutional feature map this trunk knows how to extract "
        "(supported: ResNet/ResNeXt/Wide ResNet, RegNet, VGG, AlexNet, SqueezeNet, DenseNet, MobileNet, "
        "EfficientNet, ConvNeXt, MNASNet, ShuffleNetV2, Swin)"
    )


def _measure_channels(body: nn.Module, image_size: int = 64) -> int:
    """Channels of ``body``'s output map, measured on a dummy image in eval mode."""
    was_training = body.training
    body.eval()
    with torch.no_grad():
        out = body(torch.zeros(1, 3, image_size, image_size))
    body.train(was_training)
    return int(out.shape[1])


@register("model")
class TorchvisionTrunk(nn.Module):
    """A torchvision classification network without its classifier, globally pooled.

    Args:
        name: a torchvision model name (``resnet50``, ``resnet18``, ``densenet121``, ...).
        pretrained: ``True`` (ImageNet ``IMAGENET1K_V1`` weights where they exist, else torchvision's
            ``DEFAULT``), ``False`` (random weights) or a weights member name (``"IMAGENET1K_V2"``).
        pooling: ``avg``, ``max``, ``avg+max`` or ``gem`` (see :mod:`dmlbench.models.pooling`).
        weights_path: load the weights from this file instead of the torch hub cache (a state dict
            of the full torchvision classifier, as torchvision publishes it).
        frozen_batchnorm: freeze every BatchNorm layer (:func:`freeze_batchnorm`).
        gem_p, gem_learnable: GeM's power and whether it is trained (``pooling: gem`` only).

    ``body`` holds the convolutional part (for ResNets its children are named ``conv1`` ...
    ``layer4``, so plugins can read intermediate maps); ``forward_features`` returns its map.
    """

    def __init__(
        self,
        name: str = "resnet50",
        pretrained: bool | str = True,
        pooling: str = "avg",
        weights_path: str | None = None,
        frozen_batchnorm: bool = False,
        gem_p: float = 3.0,
        gem_learnable: bool = False,
    ) -> None:
        super().__init__()
        known = torchvision.models.list_models(module=torchvision.models)
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"TorchvisionTrunk: unknown torchvision model {name!r}{hint}")
        if weights_path is not None and pretrained is False:
            raise ConfigError(f"TorchvisionTrunk({name}): weights_path is set but pretrained is false")
        entry = _weights_entry(name, pretrained)
        model = torchvision.models.get_model(name, weights=None)
        if entry is not None:
            url = entry.url
            path = locate_weights(Path(url).name, url, weights_path, f"TorchvisionTrunk({name})")
            state = load_state_dict_file(path, f"TorchvisionTrunk({name})")
            check_state_dict_fits(model, state, path, f"TorchvisionTrunk({name})")
            model.load_state_dict(state)
        self.name = name
        self.weights_name = None if entry is None else entry.name
        self.body = _feature_body(model, name)
        pool_kwargs = {"p": gem_p, "learnable": gem_learnable} if str(pooling).lower() == "gem" else {}
        self.pool = build_pooling(pooling, **pool_kwargs)
        self.num_features = _measure_channels(self.body)
        self.input_normalization = dict(IMAGENET_NORMALIZATION)
        if frozen_batchnorm:
            freeze_batchnorm(self.body)

    def forward_features(self, images: Tensor) -> Tensor:
        """The last feature map ``[B, num_features, h, w]``."""
        return self.body(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.pool(self.body(images))
