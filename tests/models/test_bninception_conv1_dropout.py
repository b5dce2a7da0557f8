"""BN-Inception's optional Dropout2d after the first convolution (the SDM repository's copy):
whole channels of the conv1 output are zeroed (p) and the rest scaled by 1/(1-p) before the
BatchNorm, in training even with frozen BatchNorm, never in eval mode."""

from __future__ import annotations

import pytest
import torch

from dmlbench.errors import ConfigError
from dmlbench.models.batchnorm import freeze_batchnorm
from dmlbench.models.bninception import BNInception


def bn_input_and_conv_output(model: BNInception, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    seen = {}
    handles = [
        model.conv1_7x7_s2.register_forward_hook(
            lambda m, i, o: seen.__setitem__("conv", o.detach().clone())
        ),
        model.conv1_7x7_s2_bn.register_forward_pre_hook(
            lambda m, i: seen.__setitem__("bn", i[0].detach().clone())
        ),
    ]
    model(images)
    for handle in handles:
        handle.remove()
    return seen["conv"], seen["bn"]


def test_channels_of_the_conv1_output_are_dropped_in_training_with_frozen_batchnorm() -> None:
    torch.manual_seed(0)
    p = 0.1
    model = BNInception(pretrained=False, conv1_dropout=p)
    freeze_batchnorm(model)
    model.train()
    images = torch.randn(8, 3, 64, 64)
    conv, bn_in = bn_input_and_conv_output(model, images)
    per_channel_zero = (bn_in == 0).flatten(2).all(dim=2)  # [8, 64]: whole channel dropped
    kept = ~per_channel_zero
    assert torch.allclose(bn_in[kept], conv[kept] / (1 - p), atol=1e-6)  # survivors scaled by 1/(1-p)
    assert 0.03 < per_channel_zero.float().mean().item() < 0.2  # 512 Bernoulli(0.1): sd 0.013
    first = model(images)
    assert not torch.allclose(first, model(images))  # two training passes differ

    model.eval()
    conv, bn_in = bn_input_and_conv_output(model, images)
    assert torch.equal(conv, bn_in)
    assert torch.equal(model(images), model(images))


def test_without_the_option_the_trunk_is_deterministic_and_the_weights_layout_is_unchanged() -> None:
    torch.manual_seed(0)
    plain = BNInception(pretrained=False)
    with_dropout = BNInception(pretrained=False, conv1_dropout=0.1)
    assert plain.state_dict().keys() == with_dropout.state_dict().keys()  # the published file still loads
    freeze_batchnorm(plain)
    plain.train()
    images = torch.randn(2, 3, 64, 64)
    assert torch.equal(plain(images), plain(images))


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_bad_probability_is_a_config_error(p: float) -> None:
    with pytest.raises(ConfigError, match="BNInception.conv1_dropout"):
        BNInception(pretrained=False, conv1_dropout=p)
