"""SmallConvNet: output width, pooling, parameter count worked out by hand, training signal."""

from __future__ import annotations

import pytest
import torch

from dmlbench.models.small_cnn import SmallConvNet


def test_default_parameter_count_matches_the_architecture():
    # conv3x3 without bias: 3*32*9 + 32*64*9 + 64*128*9 + 128*128*9; BatchNorm: 2 per channel
    expected = 3 * 32 * 9 + 32 * 64 * 9 + 64 * 128 * 9 + 128 * 128 * 9 + 2 * (32 + 64 + 128 + 128)
    assert sum(p.numel() for p in SmallConvNet().parameters()) == expected == 241184


@pytest.mark.parametrize(
    "num_features, width, num_blocks, size",
    [(128, 32, 4, 64), (64, 16, 3, 32), (256, 32, 5, 96), (10, 32, 2, 17)],
)
def test_output_is_batch_by_num_features(num_features, width, num_blocks, size):
    model = SmallConvNet(num_features=num_features, width=width, num_blocks=num_blocks)
    assert model.num_features == num_features
    out = model(torch.randn(3, 3, size, size))
    assert out.shape == (3, num_features)


def test_output_is_the_spatial_mean_of_the_last_block():
    torch.manual_seed(0)
    model = SmallConvNet().eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = model.features(images)
        assert maps.shape == (2, 128, 4, 4)  # four stride-2 blocks: 64 -> 4
        assert torch.allclose(model(images), maps.mean(dim=(2, 3)), atol=1e-6)


def test_every_parameter_gets_a_gradient_and_a_step_lowers_the_loss():
    torch.manual_seed(0)
    model = SmallConvNet(num_features=8, width=8)
    images, target = torch.randn(8, 3, 32, 32), torch.randn(8, 8)
    loss = torch.nn.functional.mse_loss(model(images), target)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    optimizer.step()
    assert torch.nn.functional.mse_loss(model(images), target) < loss


@pytest.mark.parametrize("kwargs", [{"num_features": 0}, {"width": 0}, {"num_blocks": 0}, {"in_channels": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="SmallConvNet"):
        SmallConvNet(**kwargs)


def test_registered_as_a_model():
    from dmlbench.registry import build

    model = build("model", {"SmallConvNet": {"num_features": 32}})
    assert isinstance(model, SmallConvNet) and model.num_features == 32
