"""Reading image files as bytes and decoding them to ``uint8 [3, h, w]`` tensors.

JPEG files are decoded by ``torchvision.io.decode_jpeg``: in one batched call on a CUDA device
(nvjpeg, using the GPU's hardware JPEG engines where present), or per image on the CPU
(libjpeg-turbo, the library Pillow uses, so CPU decoding matches ``PIL.Image.open`` exactly).
Other formats, and files nvjpeg refuses (e.g. CMYK JPEGs), fall back to
``torchvision.io.decode_image`` and then to Pillow. nvjpeg's output can differ from libjpeg's by a
few levels of 255 (another IDCT and chroma upsampling).
"""

from __future__ import annotations

import io
import os
import warnings
from collections import Counter
from concurrent.futures import Executor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

from dmlbench.errors import DatasetError

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec (not a dependency here);
# the functions still work. Silence only that notice.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision")

JPEG_MAGIC = b"\xff\xd8\xff"


def read_bytes(path: str | Path) -> Tensor:
    """The file's bytes as a uint8 tensor ``[n]`` (a missing file is a :class:`DatasetError`)."""
    try:
        with open(path, "rb") as handle:
            buffer = bytearray(os.fstat(handle.fileno()).st_size)
            handle.readinto(buffer)
    except FileNotFoundError as error:
        raise DatasetError(f"image file not found: {path}") from error
    except OSError as error:
        raise DatasetError(f"cannot read image file {path} ({error})") from error
    if not buffer:
        raise DatasetError(f"empty image file: {path}")
    return torch.frombuffer(buffer, dtype=torch.uint8)


def is_jpeg(data: Tensor) -> bool:
    return bytes(data[:3].tolist()) == JPEG_MAGIC


def decode_with_pil(data: Tensor, path: str | Path) -> Tensor:
    """Pillow's decoding, converted to RGB: the reference path's pixels."""
    try:
        with Image.open(io.BytesIO(data.numpy().tobytes())) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"corrupt or unreadable image: {path} ({error})") from error
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()


def decode_on_cpu(data: Tensor, path: str | Path) -> Tensor:
    """One image on the CPU: libjpeg-turbo / libpng through torchvision, else Pillow."""
    try:
        if is_jpeg(data):
            return decode_jpeg(data, mode=ImageReadMode.RGB)
        return decode_image(data, mode=ImageReadMode.RGB)
    except RuntimeError:
        return decode_with_pil(data, path)


def decode_batch(
    datas: Sequence[Tensor],
    paths: Sequence[str | Path],
    device: torch.device,
    pool: Executor | None = None,
    counts: Counter | None = None,
) -> list[Tensor]:
    """Decode a batch of encoded images to ``uint8 [3, h, w]`` tensors on ``device``.

    On CUDA the JPEGs go to nvjpeg in one call (if that call fails, each image is retried alone,
    then on the CPU); on the CPU the images are decoded by ``pool``'s threads when given.
    ``counts`` (if given) accumulates how many images each decoder handled ("nvjpeg", "cpu").
    """
    counts = Counter() if counts is None else counts
    if device.type == "cuda":
        return _decode_batch_cuda(datas, paths, device, counts)
    counts["cpu"] += len(datas)
    if pool is None:
        return [decode_on_cpu(d, p) for d, p in zip(datas, paths)]
    return list(pool.map(decode_on_cpu, datas, paths))


def _decode_batch_cuda(
    datas: Sequence[Tensor], paths: Sequence[str | Path], device: torch.device, counts: Counter
) -> list[Tensor]:
    decoded: list[Tensor | None] = [None] * len(datas)
    jpegs = [i for i, d in enumerate(datas) if is_jpeg(d)]
    if jpegs:
        try:
            images = decode_jpeg([datas[i] for i in jpegs], mode=ImageReadMode.RGB, device=device)
            for i, image in zip(jpegs, images):
                decoded[i] = image
        except RuntimeError:
            for i in jpegs:
                try:
                    decoded[i] = decode_jpeg(datas[i], mode=ImageReadMode.RGB, device=device)
                except RuntimeError:
                    pass  # decoded on the CPU below
    counts["nvjpeg"] += sum(image is not None for image in decoded)
    for i, image in enumerate(decoded):
        if image is None:
            decoded[i] = decode_on_cpu(datas[i], paths[i]).pin_memory().to(device, non_blocking=True)
            counts["cpu"] += 1
    return decoded  # type: ignore[return-value]
