"""A torchvision transform pipeline, re-expressed as per-image random parameters and a colour map.

:meth:`AugmentationPlan.from_transform` reads the same ``Compose`` the reference PIL path uses
(``Resize``, ``CenterCrop``, ``RandomCrop``, ``RandomResizedCrop``, ``RandomHorizontalFlip``, then
``ToTensor``, ``ToBGR255``, ``Normalize``), so both paths are configured once. Per batch, the random
parameters are drawn on the CPU with the distributions torchvision uses (not its random stream),
carried out with Pillow by :mod:`dmlbench.data.fast.pil_augment`, and the colour steps become a
per-channel affine map ``out_c = pixel_{perm(c)} * mul_c + add_c`` (ToTensor/ToBGR255/Normalize).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torchvision import transforms as T

from dmlbench.errors import ConfigError

SUPPORTED = (
    "Resize, CenterCrop, RandomCrop, RandomResizedCrop, RandomHorizontalFlip, ToTensor, ToBGR255, Normalize"
)


class AxisMap(NamedTuple):
    """Resample ``[offset, offset + length)`` of an axis to ``out`` pixels (int64 arrays ``[B]``)."""

    offset: np.ndarray
    length: np.ndarray
    out: np.ndarray


class StepParams(NamedTuple):
    """One step's parameters for a batch: a resampling of both axes, or a horizontal flip."""

    rows: AxisMap | None
    cols: AxisMap | None
    flip: np.ndarray | None  # bool [B]


def _uniform(generator: torch.Generator, *shape: int) -> np.ndarray:
    return torch.rand(*shape, generator=generator, dtype=torch.float64).numpy()


def _bilinear_only(transform: Any) -> None:
    if transform.interpolation != T.InterpolationMode.BILINEAR:
        raise ConfigError(
            f"fast data path: {transform!r} uses {transform.interpolation.value} interpolation; only "
            "bilinear is implemented (use the PIL loader for others)"
        )


def _float_pair(values: Any) -> tuple[float, float]:
    first, second = (float(value) for value in values)
    return first, second


def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    size = tuple(int(s) for s in size)
    return (size[0], size[0]) if len(size) == 1 else (size[0], size[1])


class Step:
    """A geometric step: draws its parameters for a batch of image sizes."""

    def sample(self, heights: np.ndarray, widths: np.ndarray, generator: torch.Generator) -> StepParams:
        raise NotImplementedError


@dataclass(frozen=True)
class ResizeStep(Step):
    """``T.Resize``: ``short`` = shorter side (aspect kept, torchvision's rounding) or fixed ``(h, w)``."""

    short: int | None = None
    fixed: tuple[int, int] | None = None

    def sample(self, heights: np.ndarray, widths: np.ndarray, generator: torch.Generator) -> StepParams:
        if self.fixed is not None:
            new_h = np.full_like(heights, self.fixed[0])
            new_w = np.full_like(widths, self.fixed[1])
        else:
            short = np.minimum(heights, widths)
            long = np.maximum(heights, widths)
            new_long = np.floor(self.short * long / short).astype(
                np.int64
            )  # torchvision: int(size * long / short)
            portrait = widths <= heights
            new_w = np.asarray(np.where(portrait, self.short, new_long))
            new_h = np.asarray(np.where(portrait, new_long, self.short))
        zero = np.zeros_like(heights)
        return StepParams(AxisMap(zero, heights, new_h), AxisMap(zero, widths, new_w), None)


@dataclass(frozen=True)
class CenterCropStep(Step):
    """``T.CenterCrop``: offset ``round((size - crop) / 2)``; zero padding when the crop is larger."""

    size: tuple[int, int]

    @staticmethod
    def _axis(sizes: np.ndarray, crop: int) -> AxisMap:
        inside = np.round((sizes - crop) / 2.0).astype(np.int64)  # Python/numpy round: half to even
        padded = -((crop - sizes) // 2)
        offset = np.where(crop > sizes, padded, inside)
        length = np.full_like(sizes, crop)
        return AxisMap(offset, length, length)

    def sample(self, heights: np.ndarray, widths: np.ndarray, generator: torch.Generator) -> StepParams:
        return StepParams(self._axis(heights, self.size[0]), self._axis(widths, self.size[1]), None)


@dataclass(frozen=True)
class RandomCropStep(Step):
    """``T.RandomCrop`` without padding: offsets uniform in ``0 .. size - crop``."""

    size: tuple[int, int]

    def sample(self, heights: np.ndarray, widths: np.ndarray, generator: torch.Generator) -> StepParams:
        th, tw = self.size
        if (heights < th).any() or (widths < tw).any():
            b = int(np.flatnonzero((heights < th) | (widths < tw))[0])
            raise ValueError(
                f"RandomCrop{self.size} is larger than an image of size {(heights[b], widths[b])}"
            )
        u = _uniform(generator, 2, len(heights))
        top = np.floor(u[0] * (heights - th + 1)).astype(np.int64)
        left = np.floor(u[1] * (widths - tw + 1)).astype(np.int64)
        return StepParams(
            AxisMap(top, np.full_like(heights, th), np.full_like(heights, th)),
            AxisMap(left, np.full_like(widths, tw), np.full_like(widths, tw)),
            None,
        )


@dataclass(frozen=True)
class RandomResizedCropStep(Step):
    """``T.RandomResizedCrop``: area fraction ~ U(scale), log aspect ~ U(log ratio), 10 tries, then
    torchvision's central fallback; the crop is resized to ``size``."""

    size: tuple[int, int]
    scale: tuple[float, float]
    ratio: tuple[float, float]
    attempts: int = 10

    def crop_boxes(
        self, heights: np.ndarray, widths: np.ndarray, generator: torch.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(top, left, height, width)`` arrays of the crops."""
        n = len(heights)
        area = (heights * widths)[:, None].astype(np.float64)
        u = _uniform(generator, 2, n, self.attempts)
        target = area * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[0])
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = np.exp(log_lo + (log_hi - log_lo) * u[1])
        crop_w = np.round(np.sqrt(target * aspect)).astype(np.int64)
        crop_h = np.round(np.sqrt(target / aspect)).astype(np.int64)
        valid = (crop_w > 0) & (crop_w <= widths[:, None]) & (crop_h > 0) & (crop_h <= heights[:, None])
        found = valid.any(axis=1)
        first = valid.argmax(axis=1)
        rows = np.arange(n)
        h = np.where(found, crop_h[rows, first], 0)
        w = np.where(found, crop_w[rows, first], 0)
        # central fallback, as torchvision
        in_ratio = widths / heights
        lo, hi = min(self.ratio), max(self.ratio)
        fb_w = np.where(in_ratio < lo, widths, np.where(in_ratio > hi, np.round(heights * hi), widths))
        fb_h = np.where(in_ratio < lo, np.round(widths / lo), heights)
        fb_w, fb_h = fb_w.astype(np.int64), fb_h.astype(np.int64)
        h = np.where(found, h, fb_h)
        w = np.where(found, w, fb_w)
        offsets = _uniform(generator, 2, n)
        top = np.where(found, np.floor(offsets[0] * (heights - h + 1)), (heights - h) // 2).astype(np.int64)
        left = np.where(found, np.floor(offsets[1] * (widths - w + 1)), (widths - w) // 2).astype(np.int64)
        return top, left, h, w

    def sample(self, heights: np.ndarray, widths: np.ndarray, generator: torch.Generator) -> StepParams:
        top, left, h, w = self.crop_boxes(heights, widths, generator)
        return StepParams(
            AxisMap(top, h, np.full_like(h, self.size[0])),
            AxisMap(left, w, np.full_like(w, self.size[1])),
            None,
        )


@dataclass(frozen=True)
class HorizontalFlipStep(Step):
    """``T.RandomHorizontalFlip``: flip each image with probability ``p``."""

    p: float

    def sample(self, heights: np.ndarray, widths: np.ndarray, generator: torch.Generator) -> StepParams:
        return StepParams(None, None, _uniform(generator, len(heights)) < self.p)


@dataclass(frozen=True)
class ColorMap:
    """``out_c = pixel_{perm[c]} * mul[c] + add[c]`` for pixels in 0..255."""

    perm: tuple[int, int, int] = (0, 1, 2)
    mul: tuple[float, float, float] = (1.0, 1.0, 1.0)
    add: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def apply(self, pixels: Tensor, out_dtype: torch.dtype = torch.float32) -> Tensor:
        """``pixels [B, 3, h, w]`` (0..255) -> normalised ``out_dtype`` tensor."""
        device = pixels.device
        mul = torch.tensor(self.mul, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        add = torch.tensor(self.add, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        if self.perm != (0, 1, 2):
            pixels = pixels[:, list(self.perm)]
        return torch.addcmul(add, pixels.float(), mul).to(out_dtype)


def _flatten(transform: Any) -> list[Any]:
    if isinstance(transform, T.Compose):
        return [inner for t in transform.transforms for inner in _flatten(t)]
    if isinstance(transform, (list, tuple)):
        return [inner for t in transform for inner in _flatten(t)]
    return [transform]


@dataclass(frozen=True)
class AugmentationPlan:
    """Geometric steps, then a colour map; ``output_size`` is the fixed ``(h, w)`` of the result."""

    steps: tuple[Step, ...]
    color: ColorMap
    output_size: tuple[int, int]

    @classmethod
    def from_transform(cls, transform: Any) -> AugmentationPlan:
        """Read a torchvision ``Compose`` (or list); unsupported steps raise :class:`ConfigError`."""
        steps: list[Step] = []
        perm, mul, add = [0, 1, 2], np.ones(3), np.zeros(3)
        to_tensor = False
        for t in _flatten(transform):
            name = type(t).__name__
            if to_tensor and isinstance(
                t, (T.Resize, T.CenterCrop, T.RandomCrop, T.RandomResizedCrop, T.RandomHorizontalFlip)
            ):
                raise ConfigError(f"fast data path: {name} after ToTensor is not supported; move it before")
            if isinstance(t, T.Resize):
                _bilinear_only(t)
                if t.max_size is not None:
                    raise ConfigError(f"fast data path: {t!r}: max_size is not supported")
                size = [t.size] if isinstance(t.size, int) else list(t.size)
                steps.append(
                    ResizeStep(short=int(size[0])) if len(size) == 1 else ResizeStep(fixed=_pair(size))
                )
            elif isinstance(t, T.RandomResizedCrop):
                _bilinear_only(t)
                steps.append(RandomResizedCropStep(_pair(t.size), _float_pair(t.scale), _float_pair(t.ratio)))
            elif isinstance(t, T.CenterCrop):
                steps.append(CenterCropStep(_pair(t.size)))
            elif isinstance(t, T.RandomCrop):
                if t.padding is not None or t.pad_if_needed:
                    raise ConfigError(f"fast data path: {t!r}: padding is not supported")
                steps.append(RandomCropStep(_pair(t.size)))
            elif isinstance(t, T.RandomHorizontalFlip):
                steps.append(HorizontalFlipStep(float(t.p)))
            elif isinstance(t, T.ToTensor):
                to_tensor = True
                mul, add = mul / 255.0, add / 255.0
            elif name == "ToBGR255" and to_tensor:
                perm, mul, add = perm[::-1], mul[::-1] * 255.0, add[::-1] * 255.0
            elif isinstance(t, T.Normalize) and to_tensor:
                mean = np.broadcast_to(np.asarray(t.mean, dtype=np.float64), 3)
                std = np.broadcast_to(np.asarray(t.std, dtype=np.float64), 3)
                mul, add = mul / std, (add - mean) / std
            else:
                raise ConfigError(
                    f"fast data path: transform {t!r} is not supported (supported, in this order: {SUPPORTED}); "
                    "use the PIL loader"
                )
        if not to_tensor:
            raise ConfigError("fast data path: the transform has no ToTensor step")
        output = cls._static_output_size(steps)
        if output is None:
            raise ConfigError(
                "fast data path: the transform does not end at a fixed size (add a crop or a Resize to (h, w)); "
                "images of a batch must have one size"
            )
        color = ColorMap(
            (int(perm[0]), int(perm[1]), int(perm[2])),
            (float(mul[0]), float(mul[1]), float(mul[2])),
            (float(add[0]), float(add[1]), float(add[2])),
        )
        return cls(tuple(steps), color, output)

    @staticmethod
    def _static_output_size(steps: Sequence[Step]) -> tuple[int, int] | None:
        size = None
        for step in steps:
            if isinstance(step, ResizeStep):
                size = step.fixed
            elif isinstance(step, (CenterCropStep, RandomCropStep, RandomResizedCropStep)):
                size = step.size
        return size

    def sample(
        self, heights: Iterable[int], widths: Iterable[int], generator: torch.Generator
    ) -> list[StepParams]:
        """Draw every step's parameters for images of these sizes (the batch's randomness)."""
        h = np.asarray(list(heights), dtype=np.int64)
        w = np.asarray(list(widths), dtype=np.int64)
        params = []
        for step in self.steps:
            p = step.sample(h, w, generator)
            params.append(p)
            if p.rows is not None and p.cols is not None:
                h, w = p.rows.out, p.cols.out
        return params
