"""Reading torchvision pipelines into an AugmentationPlan; its parameters and pixels against
torchvision applied to PIL images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from dmlbench.data.fast.plan import (
    AugmentationPlan,
    CenterCropStep,
    HorizontalFlipStep,
    RandomResizedCropStep,
    ResizeStep,
)
from dmlbench.data.transforms import ToBGR255
from dmlbench.errors import ConfigError

MLRC_TRAIN = T.Compose(
    [
        T.Resize(256),
        T.RandomResizedCrop(227, scale=(0.16, 1), ratio=(0.75, 1.33)),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
    ]
)


def test_reads_the_mlrc_pipelines():
    plan = AugmentationPlan.from_transform(MLRC_TRAIN)
    assert plan.steps == (
        ResizeStep(short=256),
        RandomResizedCropStep((227, 227), (0.16, 1.0), (0.75, 1.33)),
        HorizontalFlipStep(0.5),
    )
    assert plan.output_size == (227, 227)
    evaluation = AugmentationPlan.from_transform(T.Compose([T.Resize(256), T.CenterCrop(227), T.ToTensor()]))
    assert evaluation.steps == (ResizeStep(short=256), CenterCropStep((227, 227)))


@pytest.mark.parametrize(
    "transform, message",
    [
        (T.Compose([T.Resize(64), T.ColorJitter(0.1), T.CenterCrop(32), T.ToTensor()]), "ColorJitter"),
        (T.Compose([T.Resize(64), T.ToTensor()]), "fixed size"),
        (T.Compose([T.Resize(64), T.CenterCrop(32)]), "ToTensor"),
        (
            T.Compose(
                [T.Resize(64, interpolation=T.InterpolationMode.NEAREST), T.CenterCrop(8), T.ToTensor()]
            ),
            "bilinear",
        ),
        (T.Compose([T.RandomCrop(32, padding=4), T.ToTensor()]), "padding"),
        (T.Compose([T.ToTensor(), T.CenterCrop(32)]), "after ToTensor"),
    ],
)
def test_unsupported_pipelines_are_refused_with_the_reason(transform, message):
    with pytest.raises(ConfigError, match=message):
        AugmentationPlan.from_transform(transform)


def test_colour_map_equals_totensor_then_normalize():
    pixels = torch.randint(0, 256, (2, 3, 4, 5)).float()
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    plan = AugmentationPlan.from_transform(T.Compose([T.CenterCrop(4), T.ToTensor(), T.Normalize(mean, std)]))
    expected = (pixels / 255.0 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(plan.color.apply(pixels), expected, atol=1e-5)


def test_colour_map_of_the_bninception_convention():
    pixels = torch.randint(0, 256, (2, 3, 4, 5)).float()
    plan = AugmentationPlan.from_transform(
        T.Compose([T.CenterCrop(4), T.ToTensor(), ToBGR255(), T.Normalize([104, 117, 128], [1, 1, 1])])
    )
    expected = pixels[:, [2, 1, 0]] - torch.tensor([104.0, 117.0, 128.0]).view(1, 3, 1, 1)
    assert torch.allclose(plan.color.apply(pixels), expected, atol=1e-4)


def test_resize_sizes_equal_torchvision():
    plan = AugmentationPlan.from_transform(T.Compose([T.Resize(256), T.CenterCrop(8), T.ToTensor()]))
    sizes = [(375, 500), (500, 375), (333, 500), (500, 499), (256, 256), (100, 180), (999, 257)]
    params = plan.sample([h for h, _ in sizes], [w for _, w in sizes], torch.Generator())
    for (h, w), new_h, new_w in zip(sizes, params[0].rows.out, params[0].cols.out):
        expected_w, expected_h = T.Resize(256)(Image.new("RGB", (w, h))).size
        assert (new_h, new_w) == (expected_h, expected_w)


def test_random_resized_crop_boxes_respect_scale_ratio_and_bounds():
    step = RandomResizedCropStep((10, 10), (0.16, 1.0), (0.75, 1.33))
    heights = np.full(2000, 256)
    widths = np.full(2000, 341)
    top, left, h, w = step.crop_boxes(heights, widths, torch.Generator().manual_seed(0))
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= heights).all() and (left + w <= widths).all()
    area = h * w / (256 * 341)
    assert area.min() >= 0.16 * 0.95 and area.max() <= 1.0
    aspect = w / h
    assert aspect.min() >= 0.75 * 0.95 and aspect.max() <= 1.33 * 1.05
    # same distribution as torchvision's sampler (independent draws): mean area fraction
    torch.manual_seed(0)
    image = torch.empty(3, 256, 341)
    reference = [
        np.prod(T.RandomResizedCrop.get_params(image, [0.16, 1.0], [0.75, 1.33])[2:]) / (256 * 341)
        for _ in range(2000)
    ]
    assert abs(area.mean() - np.mean(reference)) < 0.03


def test_random_resized_crop_falls_back_to_torchvision_central_crop():
    # a 1000x10 strip can fit no crop of ratio 3/4..4/3 with area >= 16%: central fallback
    step = RandomResizedCropStep((8, 8), (0.16, 1.0), (0.75, 1.3333))
    top, left, h, w = step.crop_boxes(np.array([10]), np.array([1000]), torch.Generator().manual_seed(0))
    assert (h[0], w[0]) == (10, round(10 * 1.3333))
    assert (top[0], left[0]) == (0, (1000 - w[0]) // 2)


def test_horizontal_flip_probability():
    flips = HorizontalFlipStep(0.3).sample(
        np.ones(4000, dtype=np.int64), np.ones(4000, dtype=np.int64), torch.Generator()
    )
    assert math.isclose(flips.flip.mean(), 0.3, abs_tol=0.03)
