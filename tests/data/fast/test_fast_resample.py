"""The batched resampling matrices against Pillow's own resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fast_images import smooth_image
from PIL import Image

from dmlbench.data.fast.resample import apply_resampling, flip_rows, resampling_matrix


def _axis(length: int, out: int, offset: int = 0, in_size: int | None = None, in_max: int | None = None):
    t = lambda v: torch.tensor([v])  # noqa: E731
    in_size = length if in_size is None else in_size
    return resampling_matrix(t(offset), t(length), t(out), t(in_size), in_max or in_size, out)


def _as_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


@pytest.mark.parametrize("out_h, out_w", [(100, 133), (91, 91), (60, 80), (240, 280), (150, 49)])
def test_resize_equals_pillow_bilinear(out_h, out_w):
    image = smooth_image(np.random.default_rng(out_h), 150, 200)
    expected = _as_tensor(image.resize((out_w, out_h), Image.BILINEAR)).double()
    rows, cols = _axis(150, out_h), _axis(200, out_w)
    exact = apply_resampling(_as_tensor(image)[None], rows, cols, torch.float64)[0]
    assert torch.equal(exact, expected)  # float64 with Pillow's fixed-point weights: bit-exact
    single = apply_resampling(_as_tensor(image)[None], rows, cols, torch.float32)[0].double()
    assert (single - expected).abs().max() <= 1  # float32 may break exact ties the other way


def test_crop_then_resize_matches_pillow_crop_resize():
    image = smooth_image(np.random.default_rng(3), 150, 200)
    box = (37, 21, 37 + 125, 21 + 95)  # left, top, right, bottom
    expected = _as_tensor(image.crop(box).resize((60, 50), Image.BILINEAR)).float()
    rows = _axis(95, 50, offset=21, in_size=150)
    cols = _axis(125, 60, offset=37, in_size=200)
    got = apply_resampling(_as_tensor(image)[None], rows, cols, torch.float64)[0]
    assert torch.equal(got.float(), expected)


def test_same_size_interval_is_a_plain_crop():
    matrix = _axis(4, 4, offset=2, in_size=10)[0]
    expected = torch.zeros(4, 10, dtype=matrix.dtype)
    for row in range(4):
        expected[row, row + 2] = 1.0
    assert torch.equal(matrix, expected)


def test_padding_and_rows_beyond_the_output_size_get_no_weight():
    # image 0 is 6 pixels wide padded to 10 and resized to 3; image 1 is 10 wide resized to 5
    matrix = resampling_matrix(
        torch.tensor([0, 0]), torch.tensor([6, 10]), torch.tensor([3, 5]), torch.tensor([6, 10]), 10, 5
    )
    assert matrix[0, :, 6:].abs().sum() == 0
    assert matrix[0, 3:].abs().sum() == 0
    assert torch.allclose(matrix[0, :3].sum(dim=1), torch.ones(3, dtype=matrix.dtype))
    assert torch.allclose(matrix[1].sum(dim=1), torch.ones(5, dtype=matrix.dtype))
    # halving with the bilinear filter: each output averages a 4-pixel triangle, e.g. row 0 of
    # image 1 has centre 1.0 and weights 1-|x+0.5-1|/2 for x = 0, 1, 2 -> 0.75, 0.75, 0.25 (normalised)
    assert torch.allclose(matrix[1, 0, :3], torch.tensor([0.75, 0.75, 0.25], dtype=matrix.dtype) / 1.75)


def test_flip_rows_reverses_only_the_valid_rows_of_flipped_images():
    matrix = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    flipped = flip_rows(matrix, torch.tensor([3, 4]), torch.tensor([True, False]))
    assert torch.equal(flipped[0, :3], matrix[0, [2, 1, 0]])
    assert torch.equal(flipped[0, 3], matrix[0, 3])
    assert torch.equal(flipped[1], matrix[1])


def test_float16_resampling_stays_within_one_level_of_float32():
    image = _as_tensor(smooth_image(np.random.default_rng(5), 120, 160))[None]
    rows, cols = _axis(120, 57), _axis(160, 91)
    full = apply_resampling(image, rows, cols, torch.float32)
    half = apply_resampling(image, rows, cols, torch.float16).float()
    assert (full - half).abs().max() <= 1
