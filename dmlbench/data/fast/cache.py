"""An on-disk cache of images pre-resized to the shorter side the transforms start from.

``pre_resized(dataset, 256, root)`` writes, once, a copy of every image whose shorter side is above
256 pixels, resized as ``torchvision.transforms.Resize(256)`` resizes a PIL image (Pillow bilinear,
torchvision's rounding of the longer side), and returns a :class:`PreResizedDataset`: the same
samples, labels and order, read from the copies. A pipeline starting with ``Resize(256)`` then
sees the image it would have computed (the transform leaves a 256-pixel image as it is), minus
one JPEG encoding (quality 95, no chroma subsampling, by default; ``lossless=True`` stores PNG
instead, exact but slower to decode). Images already small enough and
stored as JPEG are copied byte for byte. CUB images (about 500x375) shrink to about 40% of
their pixels, so decoding does less work.

Files are written atomically (a hidden temporary file in the same folder, then ``os.replace``),
so an interrupted or concurrent build never leaves a partial image under a final name. A copy's
name is a hash of the source path, size and modification time (and of the dataset class and
index when the dataset post-processes its images in ``load_image``), so a changed source gets a
new copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from dmlbench.data.base import RetrievalDataset, load_rgb_image
from dmlbench.errors import DatasetError


class PreResizedDataset(RetrievalDataset):
    """The samples of ``source``, read from pre-resized copies (``paths``); labels, super-labels
    and the official split are the source's, in the same order."""

    def __init__(self, source: RetrievalDataset, paths: list[str], short_side: int) -> None:
        super().__init__(source.transform)
        self._set_samples(paths, source.labels, source.super_labels, source.official_split)
        self.source = source
        self.source_paths = list(source.paths)
        self.short_side = int(short_side)


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(width, height)`` after ``torchvision.transforms.Resize(short_side)``."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


def _uses_load_image(dataset: RetrievalDataset) -> bool:
    return type(dataset).load_image is not RetrievalDataset.load_image


class _CacheKeys:
    """The copy's name of each sample: ``sha1(real path|size|mtime_ns)`` of its source (plus the
    data set class and index when the data set post-processes images in ``load_image``). The real
    path is each folder's, looked up once, joined with the file name (a linked file, or a path
    with ``..``, is resolved whole): resolving 120k paths one by one costs seconds."""

    def __init__(self, dataset: RetrievalDataset) -> None:
        self.dataset = dataset
        self.suffix = (
            f"|{type(dataset).__module__}.{type(dataset).__qualname__}" if _uses_load_image(dataset) else None
        )
        self.real_folders: dict[str, str] = {}

    def real_path(self, source: str) -> str:
        absolute = os.path.abspath(source)
        if os.path.islink(source) or ".." in Path(source).parts:
            return os.path.realpath(source)
        folder, name = os.path.split(absolute)
        real_folder = self.real_folders.get(folder)
        if real_folder is None:
            real_folder = self.real_folders[folder] = os.path.realpath(folder)
        return os.path.join(real_folder, name)

    def __call__(self, index: int) -> str:
        path = self.real_path(os.fspath(self.dataset.paths[index]))
        try:
            stat = os.stat(path)
        except FileNotFoundError as error:
            raise DatasetError(f"image file not found: {path}") from error
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
        if self.suffix is not None:
            key += f"{self.suffix}|{index}"
        return hashlib.sha1(key.encode()).hexdigest()


def _write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """``write(temporary_path)``, then rename over ``target``; no partial file is ever left."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


def _make_copy(
    dataset: RetrievalDataset, index: int, target: Path, short_side: int, quality: int | None
) -> None:
    """Write the copy of sample ``index`` to ``target`` (unless another builder did meanwhile);
    ``quality`` None stores PNG."""
    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    source = dataset.paths[index]
    if not _uses_load_image(dataset):
        try:
            with Image.open(source) as probe:
                is_small_jpeg = probe.format == "JPEG" and min(probe.size) <= short_side
        except OSError as error:
            raise DatasetError(f"corrupt or unreadable image: {source} ({error})") from error
        if is_small_jpeg and quality is not None:
            _write_atomically(target, lambda tmp: shutil.copyfile(source, tmp))
            return
        image = load_rgb_image(source)
    else:
        image = dataset.load_image(index).convert("RGB")
    if min(image.size) > short_side:
        image = image.resize(resized_size(*image.size, short_side), Image.Resampling.BILINEAR)
    if quality is None:
        _write_atomically(target, lambda tmp: image.save(tmp, format="PNG"))
    else:
        _write_atomically(target, lambda tmp: image.save(tmp, format="JPEG", quality=quality, subsampling=0))


def pre_resized(
    dataset: RetrievalDataset,
    short_side: int,
    root: str | Path,
    quality: int = 95,
    lossless: bool = False,
    num_threads: int | None = None,
    progress: bool = False,
) -> PreResizedDataset:
    """The dataset read from copies no larger than ``short_side`` on their shorter side, under
    ``root/short<short_side>_q<quality>/`` (``..._png/`` when lossless); missing copies are
    written first (in threads)."""
    if short_side < 1:
        raise ValueError(f"pre_resized: short_side must be >= 1, got {short_side}")
    if not 1 <= quality <= 100:
        raise ValueError(f"pre_resized: quality must be in 1..100, got {quality}")
    jpeg_quality = None if lossless else int(quality)
    folder = Path(root).expanduser() / (
        f"short{int(short_side)}_png" if lossless else f"short{int(short_side)}_q{int(quality)}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    key = _CacheKeys(dataset)
    extension = ".jpg" if jpeg_quality is not None else ".png"
    targets = [folder / digest[:2] / f"{digest}{extension}" for digest in map(key, range(len(dataset)))]
    missing = [index for index, target in enumerate(targets) if not target.is_file()]
    if missing:  # a warm cache is checked here alone, without a thread per image
        threads = int(num_threads or min(8, os.cpu_count() or 1))
        with ThreadPoolExecutor(threads, thread_name_prefix="dmlbench-cache") as pool:
            jobs = pool.map(
                lambda i: _make_copy(dataset, i, targets[i], int(short_side), jpeg_quality), missing
            )
            for _ in tqdm(
                jobs, total=len(missing), desc=f"caching images at {short_side} px", disable=not progress
            ):
                pass
    return PreResizedDataset(dataset, [str(target) for target in targets], short_side)
