"""Decoded images held in memory (``images_in_memory: true`` in config_general).

Every image is decoded once, before training, and kept as a uint8 array; ``load_image`` then
costs a copy instead of a file read and a decode. Worth it for data sets that fit in memory and are
read many times (the demo: 1,536 images of 64 x 64 px, 18 MiB, read about 45,000 times). The
pixels are those ``load_image`` of the source gives, so results do not change. DataLoader worker
processes started by fork share the arrays (copy-on-write) instead of holding their own copy. The
trials of a search in one process decode the data set once, not once each.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
from PIL import Image

from dmlbench.data.base import RetrievalDataset
from dmlbench.errors import ConfigError
from dmlbench.progress import progress

#: Largest share of the machine's memory the images may take.
MAX_MEMORY_SHARE = 0.5


def physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


class InMemoryDataset(RetrievalDataset):
    """The samples of ``source`` decoded once and served from memory; labels, super-labels and
    the official split are the source's, in the same order. :meth:`load` decodes them (the
    experiment calls it in its own process before any loader starts, after the config, the
    splits and the models were checked, so that a bad input fails before the wait)."""

    def __init__(self, source: RetrievalDataset, show_progress: bool = True) -> None:
        super().__init__(source.transform)
        self._set_samples(source.paths, source.labels, source.super_labels, source.official_split)
        self.source = source
        self.show_progress = show_progress
        self.images: list[np.ndarray] | None = None
        self.nbytes = 0

    def load(self) -> InMemoryDataset:
        """Decode every image (once; later calls return at once). The images of the last data set
        decoded in this process are reused when the same files, unchanged, are asked for again
        (the trials of a search, which run one after another in the search's process)."""
        if self.images is not None:
            return self
        key = _cache_key(self.source)
        budget = physical_memory_bytes()
        if key is not None and key in _decoded:
            images, total = _decoded[key]
            check_budget(total, len(images), len(images), budget)
            self.images, self.nbytes = images, total
            return self
        images, total = [], 0
        indices: Iterable[int] = range(len(self.source))
        if self.show_progress:
            indices = progress(indices, desc="images_in_memory: decoding", unit="img")
        for index in indices:
            array = np.asarray(self.source.load_image(index))
            images.append(array)
            total += array.nbytes
            check_budget(total, index + 1, len(self.source), budget)
        self.images, self.nbytes = images, total
        _decoded.clear()  # one data set at a time: the memory check above holds for the cache too
        if key is not None:
            _decoded[key] = (images, total)
        return self

    def load_image(self, index: int) -> Image.Image:
        return Image.fromarray(self.load().images[index])  # type: ignore[index]


#: The last decoded data set of this process: its key (:func:`_cache_key`) -> (images, bytes).
_decoded: dict[tuple, tuple[list[np.ndarray], int]] = {}


def _cache_key(source: RetrievalDataset) -> tuple | None:
    """What identifies decoded images: the source's type, its files in order and each file's size
    and modification time (a rewritten file is decoded again); None when a path is no file."""
    try:
        stats = tuple((os.stat(path).st_size, os.stat(path).st_mtime_ns) for path in source.paths)
    except (OSError, TypeError):
        return None
    return (type(source).__module__, type(source).__qualname__, tuple(map(str, source.paths)), stats)


def check_budget(total: int, done: int, count: int, budget: int | None) -> None:
    """Refuse (early: projected from the images decoded so far) a data set that would take more
    than ``MAX_MEMORY_SHARE`` of the machine's memory."""
    if budget is None or (done < min(count, 64) and done < count):
        return
    projected = total / done * count
    if projected > MAX_MEMORY_SHARE * budget:
        raise ConfigError(
            f"images_in_memory: the {count} decoded images would take about {projected / 2**30:.1f} GiB, more than "
            f"{MAX_MEMORY_SHARE:.0%} of this machine's {budget / 2**30:.1f} GiB; set images_in_memory: false "
            "(or pre_resized_cache: 256 to read smaller copies from disk)"
        )
