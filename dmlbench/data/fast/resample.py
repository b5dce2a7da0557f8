"""Pillow-compatible bilinear resampling of a batch of images as two batched matrix products.

Every geometric step of the reference pipeline (Resize, CenterCrop, RandomCrop,
RandomResizedCrop, horizontal flip) is linear and separable: along each axis it maps input
pixels to output pixels with a matrix. For image ``b`` with rows matrix ``R_b`` (out_h x H) and
columns matrix ``C_b`` (out_w x W), the output is ``R_b @ image_b @ C_b^T``; a chain of steps is
the product of their matrices. So a whole augmentation chain for a batch of differently sized
images is two batched products on a zero-padded batch.

The weights reproduce Pillow's antialiased bilinear filter (``Image.resize(..., BILINEAR)``,
which torchvision uses for PIL images): to resample the input interval ``[offset, offset+length)``
of an axis to ``n`` pixels, ``scale = length / n``, ``s = max(scale, 1)``, and output pixel ``o``
(centre ``c = (o + 0.5) * scale`` in interval coordinates) takes input pixel ``x`` with weight
``max(0, 1 - |x - c + 0.5| / s)`` for ``x`` in ``[floor(c - s + 0.5), floor(c + s + 0.5))``
clipped to the interval, the weights of a row normalised to sum 1. A crop is the same formula with
``length == n`` (a one-hot row). Pillow resamples columns first and rounds to 8 bits after each
pass; :func:`apply_resampling` does the same, so a single resize or crop matches Pillow up to its
fixed-point arithmetic. In float64 (the CPU default) the weights are also rounded to Pillow's
22-bit fixed point, which makes a single resize or crop identical to Pillow's; in float32 or
float16 exact ties (frequent with simple scale factors) may round the other way (1 level of 255).
A chain of resamplings is done in one pass here, while Pillow rounds between them: that adds up
to about 1 more level.
"""

from __future__ import annotations

import torch
from torch import Tensor


def resampling_matrix(
    offset: Tensor,
    length: Tensor,
    out_size: Tensor,
    in_size: Tensor,
    in_max: int,
    out_max: int,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Per-image matrices ``[B, out_max, in_max]`` resampling one axis.

    Image ``b`` maps its input interval ``[offset_b, offset_b + length_b)`` to ``out_size_b``
    pixels; input pixels at or beyond ``in_size_b`` (padding) or before 0 get no weight, rows at or
    beyond ``out_size_b`` are zero. All arguments are int64 tensors ``[B]`` on the target device.
    ``dtype``: float64 by default on the CPU (Pillow computes its weights in double), float32 on
    other devices.
    """
    device = offset.device
    real = dtype or (torch.float64 if device.type == "cpu" else torch.float32)
    offset = offset.to(real)[:, None, None]
    length = length.to(real)[:, None, None]
    n_out = out_size.to(real)[:, None, None]
    scale = length / n_out
    inverse_support = 1.0 / scale.clamp(min=1.0)  # bilinear support 1, stretched when reducing
    rows = torch.arange(out_max, device=device, dtype=real)[None, :, None]
    cols = torch.arange(in_max, device=device, dtype=real)[None, None, :]
    # Input pixel x (absolute) weighs max(0, 1 - |x - centre| / support) with the centre in absolute
    # coordinates minus Pillow's half pixel. Outside Pillow's window [floor(c - s + 0.5),
    # floor(c + s + 0.5)) this triangle is already 0, so the window only clips to the interval.
    centre = (rows + 0.5) * scale - 0.5 + offset
    weights = (cols - centre).abs_().mul_(inverse_support).neg_().add_(1.0).clamp_(min=0.0)
    in_interval = (cols >= offset) & (cols < offset + length) & (cols < in_size.to(real)[:, None, None])
    weights.mul_(in_interval).mul_(rows < n_out)
    totals = weights.sum(dim=2, keepdim=True)
    return weights.div_(totals.clamp_(min=1e-30))  # all-zero rows (padding) stay zero


def flip_rows(matrix: Tensor, sizes: Tensor, flip: Tensor) -> Tensor:
    """Reverse the first ``sizes_b`` rows of ``matrix[b]`` where ``flip_b`` (a horizontal flip
    when ``matrix`` maps columns)."""
    rows = torch.arange(matrix.shape[1], device=matrix.device)[None, :]
    sizes = sizes[:, None]
    reversed_rows = torch.where(rows < sizes, sizes - 1 - rows, rows)
    order = torch.where(flip[:, None], reversed_rows, rows.expand_as(reversed_rows))
    return torch.gather(matrix, 1, order[:, :, None].expand(-1, -1, matrix.shape[2]))


PILLOW_PRECISION_BITS = 22  # Pillow's 8-bit resampling: 32 - 8 - 2 bits of fixed point


def pillow_fixed_point(weights: Tensor) -> Tensor:
    """Weights rounded (half away from zero) to Pillow's fixed-point grid of ``2**-22``."""
    scale = float(2**PILLOW_PRECISION_BITS)
    return torch.sign(weights) * torch.floor(weights.abs() * scale + 0.5) / scale


def _round_half_up(values: Tensor) -> Tensor:
    """Pillow's rounding of a resampled value to 0..255."""
    return torch.floor(values + 0.5).clamp_(0, 255)


def apply_resampling(images: Tensor, rows: Tensor, cols: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """``round(rows_b @ round(image_b @ cols_b^T))`` for a padded batch.

    Args:
        images: ``[B, C, H, W]`` (uint8 or float, 0..255), zero-padded.
        rows: ``[B, h, H]``; cols: ``[B, w, W]`` (from :func:`resampling_matrix`).
        dtype: the matrix products' precision: float64 (exact Pillow arithmetic, see the module
            docstring), float32, or float16 on a GPU (its integer-valued intermediates are exact;
            the weights' rounding moves a result by at most ~0.15 before rounding).
    Returns: ``[B, C, h, w]`` in ``dtype``, integer values 0..255.
    """
    if dtype == torch.float64:
        rows, cols = pillow_fixed_point(rows.double()), pillow_fixed_point(cols.double())
    x = images.to(dtype)
    x = _round_half_up(torch.matmul(x, cols.to(dtype).transpose(1, 2).unsqueeze(1)))
    return _round_half_up(torch.matmul(rows.to(dtype).unsqueeze(1), x))
