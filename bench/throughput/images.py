"""A synthetic data set of CUB-like photos: JPEGs of about 500x375 px (quality 90), long side 500
most of the time, a fifth portrait; smooth colour fields with hard-edged blobs and fine noise, so
that decoding and resampling cost what real photos cost. ``--quick`` makes tiny ones."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dmlbench.data.base import RetrievalDataset


def _cub_like_size(rng: np.random.Generator) -> tuple[int, int]:
    """(height, width): long side 500 most of the time, aspect 0.6-0.9, a fifth portrait."""
    long = 500 if rng.random() < 0.85 else int(rng.integers(300, 500))
    short = int(long * rng.uniform(0.6, 0.9))
    return (long, short) if rng.random() < 0.2 else (short, long)


def _write_one(job: tuple[str, int, int, int]) -> int:
    """A photo-like JPEG: smooth colour field, blobs and edges, fine noise; returns its bytes."""
    path, height, width, seed = job
    rng = np.random.default_rng(seed)
    coarse = (rng.random((height // 24 + 2, width // 24 + 2, 3)) * 255).astype(np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC)).astype(np.int16)
    for _ in range(int(rng.integers(5, 15))):  # hard-edged rectangles: texture for the encoder
        y, x = int(rng.integers(0, height - 20)), int(rng.integers(0, width - 20))
        h, w = int(rng.integers(10, height // 3)), int(rng.integers(10, width // 3))
        image[y : y + h, x : x + w] = rng.integers(0, 255, 3)
    image = np.clip(image + rng.normal(0, 7, image.shape), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(path, format="JPEG", quality=90)
    return os.path.getsize(path)


def make_jpeg_dataset(
    folder: Path, count: int, quick: bool, workers: int
) -> tuple[list[str], dict[str, Any]]:
    """Write ``count`` JPEGs into ``folder`` with ``workers`` processes; their paths and a
    description of the data (sizes, file size, time to generate)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(count):
        height, width = (
            (int(rng.integers(70, 100)), int(rng.integers(90, 130))) if quick else _cub_like_size(rng)
        )
        jobs.append((str(folder / f"{i:05d}.jpg"), height, width, i))
    started = time.perf_counter()
    with ProcessPoolExecutor(max(1, workers)) as pool:
        sizes = list(pool.map(_write_one, jobs, chunksize=16))
    info = {
        "images": count,
        "mean_height": float(np.mean([j[1] for j in jobs])),
        "mean_width": float(np.mean([j[2] for j in jobs])),
        "mean_file_kb": float(np.mean(sizes) / 1024),
        "seconds_to_generate": round(time.perf_counter() - started, 2),
    }
    return [j[0] for j in jobs], info


class JpegFolder(RetrievalDataset):
    """The JPEGs as a retrieval data set, labels cycling through ``num_classes``."""

    def __init__(self, paths: list[str], num_classes: int, transform: Any = None) -> None:
        super().__init__(transform)
        self._set_samples(paths, [i % num_classes for i in range(len(paths))])
