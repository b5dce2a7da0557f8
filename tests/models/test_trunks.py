"""TorchvisionTrunk: shapes, offline weight loading, state-dict round trips, frozen BatchNorm."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from dmlbench.errors import ConfigError
from dmlbench.models.batchnorm import freeze_batchnorm, is_batchnorm_frozen
from dmlbench.models.trunks import PretrainedWeightsError, TorchvisionTrunk
from dmlbench.registry import build


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME, so the real hub cache is never read."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_resnet18_trunk_shapes_and_pooling_variants():
    torch.manual_seed(0)
    trunk = TorchvisionTrunk("resnet18", pretrained=False).eval()
    images = torch.randn(2, 3, 64, 64)
    assert trunk.num_features == 512
    assert trunk(images).shape == (2, 512)
    feature_map = trunk.forward_features(images)
    assert feature_map.shape == (2, 512, 2, 2)
    trunk.pool = TorchvisionTrunk("resnet18", pretrained=False, pooling="avg+max").pool
    assert torch.allclose(
        trunk(images), feature_map.mean(dim=(2, 3)) + feature_map.amax(dim=(2, 3)), atol=1e-6
    )


def test_state_dict_round_trip_is_exact(tmp_path):
    torch.manual_seed(1)
    original = TorchvisionTrunk("resnet18", pretrained=False, pooling="gem", gem_learnable=True).eval()
    path = tmp_path / "trunk.pt"
    torch.save(original.state_dict(), path)
    torch.manual_seed(2)
    restored = TorchvisionTrunk("resnet18", pretrained=False, pooling="gem", gem_learnable=True).eval()
    images = torch.randn(2, 3, 64, 64)
    assert not torch.equal(original(images), restored(images))
    restored.load_state_dict(torch.load(path, weights_only=True))
    for key, value in original.state_dict().items():
        assert torch.equal(value, restored.state_dict()[key]), key
    assert torch.equal(original(images), restored(images))


def test_missing_weights_name_the_file_url_and_folder(torch_home):
    with pytest.raises(PretrainedWeightsError) as error:
        TorchvisionTrunk("resnet18", pretrained=True)
    message = str(error.value)
    assert "resnet18-f37072fd.pth" in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert "\n" not in message


def test_pretrained_true_means_the_v1_weights_the_papers_used(torch_home):
    with pytest.raises(PretrainedWeightsError, match="resnet50-0676ba61.pth"):
        TorchvisionTrunk("resnet50", pretrained=True)
    with pytest.raises(PretrainedWeightsError, match="resnet50-11ad3fa6.pth"):
        TorchvisionTrunk("resnet50", pretrained="IMAGENET1K_V2")
    with pytest.raises(ConfigError, match="IMAGENET1K_V1, IMAGENET1K_V2"):
        TorchvisionTrunk("resnet50", pretrained="IMAGENET_V9")


def test_weights_are_loaded_from_the_hub_cache_or_weights_path(torch_home, tmp_path):
    torch.manual_seed(3)
    published = torchvision.models.resnet18()
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(published.state_dict(), checkpoints / "resnet18-f37072fd.pth")
    trunk = TorchvisionTrunk("resnet18", pretrained=True)
    assert trunk.weights_name == "IMAGENET1K_V1"
    assert torch.equal(trunk.body.conv1.weight, published.conv1.weight)
    assert torch.equal(trunk.body.layer4[1].bn2.running_var, published.layer4[1].bn2.running_var)
    elsewhere = tmp_path / "my_copy.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in published.state_dict().items()}}, elsewhere)
    from_path = TorchvisionTrunk("resnet18", pretrained=True, weights_path=str(elsewhere))
    assert torch.equal(from_path.body.layer1[0].conv1.weight, published.layer1[0].conv1.weight)


def test_weights_of_another_architecture_are_refused(torch_home, tmp_path):
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), path)
    with pytest.raises(PretrainedWeightsError, match="does not fit the model"):
        TorchvisionTrunk("resnet18", pretrained=True, weights_path=str(path))


def test_unknown_model_names_suggest_the_nearest():
    with pytest.raises(ConfigError, match="resnet50"):
        TorchvisionTrunk("resnet05", pretrained=False)


def test_registered_for_configs():
    trunk = build("model", {"TorchvisionTrunk": {"name": "resnet18", "pretrained": False, "pooling": "max"}})
    assert isinstance(trunk, TorchvisionTrunk) and trunk.num_features == 512


def _train_steps(model: nn.Module, steps: int = 2) -> None:
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for step in range(steps):
        model.train()  # as the trainer does every epoch
        images = torch.randn(4, 3, 32, 32) * (step + 2) + 1.0  # statistics far from the stored ones
        loss = model(images).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _batchnorm_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.clone()
        for k, v in model.state_dict().items()
        if any(k.endswith(s) for s in ("running_mean", "running_var", "bn1.weight", "bn1.bias"))
    }


def test_frozen_batchnorm_keeps_statistics_and_parameters_through_training():
    torch.manual_seed(4)
    trunk = TorchvisionTrunk("resnet18", pretrained=False, frozen_batchnorm=True)
    before = _batchnorm_state(trunk)
    conv_before = trunk.body.conv1.weight.clone()
    _train_steps(trunk)
    after = _batchnorm_state(trunk)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(conv_before, trunk.body.conv1.weight)  # the rest trained
    assert all(is_batchnorm_frozen(m) for m in trunk.modules() if isinstance(m, nn.BatchNorm2d))
    # control: without freezing the same steps move the statistics
    torch.manual_seed(4)
    free = TorchvisionTrunk("resnet18", pretrained=False)
    free_before = _batchnorm_state(free)
    _train_steps(free)
    assert not torch.equal(
        free_before["body.bn1.running_mean"], _batchnorm_state(free)["body.bn1.running_mean"]
    )


def test_freeze_batchnorm_survives_train_calls_and_deepcopy():
    import copy

    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    freeze_batchnorm(model)
    freeze_batchnorm(model)  # idempotent: one hook
    assert len(model[1]._forward_pre_hooks) == 1
    assert not model[1].weight.requires_grad and not model[1].bias.requires_grad
    clone = copy.deepcopy(model)
    for m in (model, clone):
        stats = m[1].running_mean.clone()
        m.train()
        m(torch.randn(4, 3, 8, 8) + 5)
        assert torch.equal(stats, m[1].running_mean)
        assert not m[1].training
