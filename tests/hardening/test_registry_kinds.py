"""Item 3: each registry kind resolves only classes of that kind (no arbitrary public callables
of the searched modules); unknown names still list the nearest names of the same kind."""

from __future__ import annotations

import inspect

import pytest
import torch
from pytorch_metric_learning import distances, losses, miners, reducers, regularizers

from dmlbench.errors import RegistryError
from dmlbench.registry import available, build, lookup
from dmlbench.training.plugins import TrainingPlugin

# names that are public in a searched module (or importable everywhere) but are not of the kind
NOT_OF_KIND = [
    ("loss", "cast"),
    ("loss", "wraps"),
    ("loss", "Parameter"),
    ("loss", "init"),
    ("loss", "functional"),
    ("model", "get_weight"),
    ("model", "list_models"),
    ("sampler", "Dataset"),
    ("sampler", "DataLoader"),
    ("sampler", "default_collate"),
    ("optimizer", "lr_scheduler"),
    ("optimizer", "Tensor"),
    ("lr_scheduler", "Optimizer"),
    ("distance", "BaseReducer"),
    ("reducer", "LpDistance"),
    ("miner", "MultiSimilarityLoss"),
    ("transform", "functional"),
    ("transform", "InterpolationMode"),
    ("regularizer", "LpDistance"),
    ("training_plugin", "LossInputs"),
    ("dataset", "Dataset"),
]


@pytest.mark.parametrize("kind, name", NOT_OF_KIND)
def test_names_of_another_kind_are_refused(kind, name):
    with pytest.raises(RegistryError) as raised:
        lookup(kind, name)
    assert len(str(raised.value).splitlines()) == 1


def test_a_refused_name_is_never_called(monkeypatch):
    import torch.optim as optim

    calls = []
    monkeypatch.setattr(optim, "called_if_resolved", lambda **kwargs: calls.append(kwargs), raising=False)
    with pytest.raises(RegistryError):
        build("optimizer", {"called_if_resolved": {}})
    assert calls == []


@pytest.mark.parametrize(
    "kind, base",
    [
        ("loss", torch.nn.Module),
        ("model", torch.nn.Module),
        ("sampler", torch.utils.data.Sampler),
        ("optimizer", torch.optim.Optimizer),
        ("distance", distances.BaseDistance),
        ("reducer", reducers.BaseReducer),
        ("miner", miners.BaseMiner),
        ("regularizer", regularizers.BaseRegularizer),
        ("training_plugin", TrainingPlugin),
    ],
)
def test_every_listed_name_is_of_its_kind(kind, base):
    names = available(kind)
    assert names
    for name in names:
        obj = lookup(kind, name)
        if inspect.isclass(obj):
            assert issubclass(obj, base), (kind, name)
        else:  # only torchvision's documented model builders are functions
            import torchvision

            assert kind == "model" and name in torchvision.models.list_models(), (kind, name)


def test_library_classes_of_the_kind_are_found():
    assert lookup("loss", "MultiSimilarityLoss") is losses.MultiSimilarityLoss
    assert lookup("loss", "CrossEntropyLoss") is torch.nn.CrossEntropyLoss
    assert lookup("optimizer", "Adam") is torch.optim.Adam
    assert lookup("lr_scheduler", "ReduceLROnPlateau") is torch.optim.lr_scheduler.ReduceLROnPlateau
    assert lookup("sampler", "MPerClassSampler").__name__ == "MPerClassSampler"
    assert callable(lookup("model", "resnet50"))
    assert lookup("transform", "RandomResizedCrop").__name__ == "RandomResizedCrop"


def test_nearest_names_are_of_the_same_kind():
    with pytest.raises(RegistryError) as raised:
        lookup("distance", "CosineSimilarty")
    message = str(raised.value)
    assert "nearest: CosineSimilarity" in message
    suggested = message.split("nearest: ", 1)[1].split(", ")
    assert all(name in available("distance") for name in suggested)
    with pytest.raises(RegistryError, match="is not an optimizer"):
        lookup("optimizer", "lr_scheduler")
