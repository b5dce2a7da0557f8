"""Small synthetic image sets for the fast-data-path tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dmlbench.data.base import RetrievalDataset


def smooth_image(rng: np.random.Generator, height: int, width: int, mode: str = "RGB") -> Image.Image:
    """Photo-like content: coarse random colours upsampled with a smooth filter, plus fine noise."""
    coarse = (rng.random((height // 6 + 2, width // 6 + 2, 3)) * 255).astype(np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC)).astype(np.int16)
    image = np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(image).convert(mode)


def write_images(
    folder: Path, sizes: Sequence[tuple[int, int]], seed: int = 0, fmt: str = "JPEG", mode: str = "RGB"
) -> list[str]:
    """One image per ``(height, width)``; returns their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = {"JPEG": "jpg", "PNG": "png"}[fmt]
    paths = []
    for i, (height, width) in enumerate(sizes):
        path = folder / f"img_{i:03d}.{suffix}"
        options = {"quality": 90} if fmt == "JPEG" else {}
        smooth_image(rng, height, width, mode).save(path, format=fmt, **options)
        paths.append(str(path))
    return paths


def random_sizes(count: int, low: int, high: int, seed: int = 1) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(low, high)), int(rng.integers(low, high))) for _ in range(count)]


class FileDataset(RetrievalDataset):
    """Images at ``paths`` with ``labels``."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], transform: Any = None) -> None:
        super().__init__(transform)
        self._set_samples(paths, labels)


class CroppingDataset(FileDataset):
    """A dataset that post-processes its images (keeps the top-left 3/4), like a bounding-box crop."""

    def load_image(self, index: int) -> Image.Image:
        image = super().load_image(index)
        return image.crop((0, 0, image.width * 3 // 4, image.height * 3 // 4))
