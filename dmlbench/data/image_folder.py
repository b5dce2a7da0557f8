"""Any image collection stored as one folder per class.

Layouts (``root``, or ``root/<folder>`` when ``folder`` is given)::

    <class name>/<image>            no official split
    <split>/<class name>/<image>    split folders: every top-level folder is one of
                                    train, val, validation, test, query, gallery

Images are found recursively below each class folder (extensions in ``IMAGE_EXTENSIONS``, any
case). Labels: class folder names in sorted order mapped to 0, 1, 2, ... (one numbering across
split folders); ``class_names[label]`` is the name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from dmlbench.data.base import RetrievalDataset
from dmlbench.errors import DatasetError
from dmlbench.registry import register

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
SPLIT_FOLDER_NAMES = frozenset({"train", "val", "validation", "test", "query", "gallery"})


def _subfolders(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(entry.name for entry in entries if entry.is_dir() and not entry.name.startswith("."))


def _images_below(folder: Path, extensions: tuple[str, ...]) -> list[str]:
    """Image files below ``folder``, recursively, in sorted order."""
    found: list[str] = []
    for current, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(
            os.path.join(current, name) for name in sorted(files) if name.lower().endswith(extensions)
        )
    return found


@register("dataset", "ImageFolder")
class ImageFolder(RetrievalDataset):
    """Images in one folder per class, optionally inside train/test/... split folders."""

    registry_name = "ImageFolder"

    def __init__(
        self,
        root: str | Path,
        transform: Callable[[Image.Image], Any] | None = None,
        download: bool = False,
        folder: str | None = None,
        split_folders: bool | None = None,
        extensions: tuple[str, ...] | list[str] = IMAGE_EXTENSIONS,
    ) -> None:
        super().__init__(transform)
        base = Path(root).expanduser() / folder if folder else Path(root).expanduser()
        if not base.is_dir():
            nothing = " (ImageFolder reads your own images; there is nothing to download)" if download else ""
            what = f"{base} is a file, not a folder" if base.is_file() else f"folder {base} not found"
            raise DatasetError(
                f"ImageFolder: {what}{nothing}; --dataset_root (and folder) must name a folder with one "
                f"sub-folder of images per class"
            )
        self.folder = base
        extensions = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
        top = _subfolders(base)
        if split_folders is None:
            split_folders = bool(top) and all(name.lower() in SPLIT_FOLDER_NAMES for name in top)
        groups: list[tuple[str | None, Path]] = (
            [(name, base / name) for name in top] if split_folders else [(None, base)]
        )

        samples: list[tuple[str, str, str | None]] = []  # (path, class name, split)
        for split, group_folder in groups:
            for class_name in _subfolders(group_folder):
                for path in _images_below(group_folder / class_name, extensions):
                    samples.append((path, class_name, split))
        if not samples:
            raise DatasetError(
                f"ImageFolder: no images ({', '.join(extensions)}) found in class folders under {base}"
            )
        self.class_names: list[str] = sorted({class_name for _, class_name, _ in samples})
        label_of = {name: index for index, name in enumerate(self.class_names)}
        self._set_samples(
            [path for path, _, _ in samples],
            [label_of[class_name] for _, class_name, _ in samples],
            official_split=[str(split) for _, _, split in samples] if split_folders else None,
        )
