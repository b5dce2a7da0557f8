"""BN-Inception: the published pretrainedmodels layout, shapes, and offline weight loading."""

from __future__ import annotations

import pytest
import torch

from dmlbench.models.bninception import BNInception
from dmlbench.models.trunks import PretrainedWeightsError
from dmlbench.registry import build, lookup

# Written by hand from the layer definitions of Cadene's pretrainedmodels `bninception`
# (the layout of bn_inception-52deb4733.pth): name -> shape.
PUBLISHED_SHAPES = {
    "conv1_7x7_s2.weight": (64, 3, 7, 7),
    "conv1_7x7_s2.bias": (64,),
    "conv1_7x7_s2_bn.weight": (64,),
    "conv1_7x7_s2_bn.running_var": (64,),
    "conv2_3x3_reduce.weight": (64, 64, 1, 1),
    "conv2_3x3.weight": (192, 64, 3, 3),
    "conv2_3x3_bn.running_mean": (192,),
    "inception_3a_1x1.weight": (64, 192, 1, 1),
    "inception_3a_3x3.weight": (64, 64, 3, 3),
    "inception_3a_double_3x3_1.weight": (96, 64, 3, 3),
    "inception_3a_pool_proj.weight": (32, 192, 1, 1),
    "inception_3b_pool_proj.weight": (64, 256, 1, 1),
    "inception_3c_3x3_reduce.weight": (128, 320, 1, 1),
    "inception_3c_3x3.weight": (160, 128, 3, 3),
    "inception_3c_double_3x3_2.weight": (96, 96, 3, 3),
    "inception_4a_1x1.weight": (224, 576, 1, 1),
    "inception_4c_double_3x3_2_bn.bias": (160,),
    "inception_4d_1x1.weight": (96, 608, 1, 1),
    "inception_4e_double_3x3_1.weight": (256, 192, 3, 3),
    "inception_4e_double_3x3_2.weight": (256, 256, 3, 3),
    "inception_5a_1x1.weight": (352, 1056, 1, 1),
    "inception_5a_3x3.weight": (320, 192, 3, 3),
    "inception_5b_double_3x3_reduce.weight": (192, 1024, 1, 1),
    "inception_5b_pool_proj.weight": (128, 1024, 1, 1),
    "inception_5b_pool_proj_bn.running_var": (128,),
}
# 69 convolutions (3 stem + 8 blocks x 7 + 2 reduction blocks x 5), each with weight and bias,
# each followed by a BatchNorm with weight, bias, running_mean, running_var.
PUBLISHED_KEY_COUNT = 69 * 6


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return BNInception(pretrained=False).eval()


def test_state_dict_keys_and_shapes_follow_the_published_layout(model):
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert len(state) == PUBLISHED_KEY_COUNT
    for key, shape in PUBLISHED_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    for absent in ("inception_3c_1x1.weight", "inception_3c_pool_proj.weight", "inception_4e_1x1.weight"):
        assert absent not in state  # reduction blocks pass the pooled input through


def test_output_shapes(model):
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 227, 227)).shape == (1, 1024, 7, 7)
        assert model(torch.randn(2, 3, 96, 96)).shape == (2, 1024)
    assert model.num_features == 1024


def test_input_convention_is_caffe_bgr_255():
    trunk = BNInception(pretrained=False)
    assert trunk.input_normalization == {
        "mean": [104.0, 117.0, 128.0],
        "std": [1.0, 1.0, 1.0],
        "bgr": True,
        "scale": 255,
    }
    to_bgr = lookup("transform", "ToBGR255")()
    rgb = torch.rand(3, 2, 2)
    assert torch.allclose(to_bgr(rgb), rgb[[2, 1, 0]] * 255)


def _published_file(model: BNInception, path) -> dict[str, torch.Tensor]:
    """A file laid out as the published one: BN tensors as [1, C] (as some conversions store them),
    no num_batches_tracked, and the ImageNet classifier."""
    published = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        published[key] = value.unsqueeze(0) if "_bn." in key else value
    published["last_linear.weight"] = torch.randn(1000, 1024)
    published["last_linear.bias"] = torch.randn(1000)
    torch.save(published, path)
    return published


def test_loads_the_published_layout_from_the_hub_cache(model, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    _published_file(model, checkpoints / "bn_inception-52deb4733.pth")
    loaded = BNInception(pretrained=True).eval()
    for key, value in model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded.state_dict()[key], value), key
    images = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))


def test_missing_weights_name_the_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PretrainedWeightsError) as error:
        BNInception(pretrained=True)
    assert "bn_inception-52deb4733.pth" in str(error.value)
    assert "http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth" in str(error.value)
    assert str(tmp_path / "hub" / "checkpoints") in str(error.value)


def test_a_file_with_missing_layers_is_refused(model, tmp_path):
    path = tmp_path / "partial.pth"
    published = _published_file(model, path)
    del published["inception_4a_1x1.weight"]
    torch.save(published, path)
    with pytest.raises(PretrainedWeightsError, match="inception_4a_1x1.weight"):
        BNInception(pretrained=True, weights_path=str(path))


def test_registered_for_configs():
    trunk = build(
        "model", {"BNInception": {"pretrained": False, "pooling": "avg+max", "frozen_batchnorm": True}}
    )
    assert isinstance(trunk, BNInception)
    assert not trunk.conv1_7x7_s2_bn.weight.requires_grad
