"""The common shape of every data set: image paths on disk with integer labels.

A data set knows its labels (and super-labels where they exist) and its official train/test
split; which samples train, validate or test is decided later by a split manager, and the
transform is chosen per split through :class:`TransformedSubset`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dmlbench.errors import DatasetError


def load_rgb_image(path: str | Path) -> Image.Image:
    """Open an image as RGB, turning a missing or corrupt file into a :class:`DatasetError`."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError as error:
        raise DatasetError(f"image file not found: {path}") from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DatasetError(f"corrupt or unreadable image: {path} ({error})") from error


class RetrievalDataset(torch.utils.data.Dataset):
    """Images with integer class labels.

    Subclasses set, in ``__init__``:
      - ``paths``: list of image file paths, one per sample;
      - ``labels``: int64 array of class labels as the data set defines them (CUB 1..200, ...);
      - ``super_labels``: int64 array or None (SOP super-classes, iNaturalist super-categories);
      - ``official_split``: array of str ("train"/"test"; In-Shop "train"/"query"/"gallery")
        or None. Split managers may use it or ignore it.
    """

    paths: list[str]
    labels: np.ndarray
    super_labels: np.ndarray | None = None
    official_split: np.ndarray | None = None

    def __init__(self, transform: Callable[[Image.Image], Any] | None = None) -> None:
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def load_image(self, index: int) -> Image.Image:
        return load_rgb_image(self.paths[index])

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    @property
    def num_classes(self) -> int:
        return int(np.unique(self.labels).size)

    def _set_samples(
        self,
        paths: Sequence[str | Path],
        labels: Sequence[int] | np.ndarray,
        super_labels: Sequence[int] | np.ndarray | None = None,
        official_split: Sequence[str] | np.ndarray | None = None,
    ) -> None:
        """Store the sample lists as arrays, checking that they line up."""
        self.paths = [str(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        if len(self.paths) != len(self.labels):
            raise DatasetError(
                f"{type(self).__name__}: {len(self.paths)} paths but {len(self.labels)} labels"
            )
        self.super_labels = None if super_labels is None else np.asarray(super_labels, dtype=np.int64)
        self.official_split = None if official_split is None else np.asarray(official_split, dtype=str)


class TransformedSubset(torch.utils.data.Dataset):
    """The samples ``indices`` of ``dataset``, loaded with ``transform``, labels optionally
    remapped (``label_map``: original label -> contiguous training label)."""

    def __init__(
        self,
        dataset: RetrievalDataset,
        indices: Sequence[int] | np.ndarray,
        transform: Callable[[Image.Image], Any] | None,
        label_map: dict[int, int] | None = None,
    ) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform
        original = dataset.labels[self.indices]
        self.labels = (
            original if label_map is None else np.array([label_map[int(l)] for l in original], dtype=np.int64)
        )

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.dataset.load_image(int(self.indices[index]))
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])
