"""Validating a data set on disk: sizes per official split, and every image opened.

``summarize`` counts images and classes per official split (and compares them with the published
sizes when the class knows them); ``find_bad_images`` opens every file with PIL (``verify``, or a
full decode) and returns the missing or unreadable ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image
from tqdm import tqdm

from dmlbench.data.base import RetrievalDataset


@dataclass(frozen=True)
class SplitSummary:
    split: str
    images: int
    classes: int
    published: tuple[int, int] | None = None

    @property
    def matches_published(self) -> bool:
        return self.published is None or self.published == (self.images, self.classes)


def summarize(dataset: RetrievalDataset) -> list[SplitSummary]:
    """One row per official split (in order of first appearance) plus "all"."""
    published = getattr(dataset, "reference_sizes", {}) or {}
    labels = np.asarray(dataset.labels)
    rows = []
    if dataset.official_split is not None:
        splits = np.asarray(dataset.official_split)
        _, first = np.unique(splits, return_index=True)
        for name in splits[np.sort(first)]:
            mask = splits == name
            rows.append(
                SplitSummary(
                    str(name), int(mask.sum()), int(np.unique(labels[mask]).size), published.get(str(name))
                )
            )
    rows.append(SplitSummary("all", len(labels), int(np.unique(labels).size)))
    return rows


def format_summary(rows: Sequence[SplitSummary]) -> str:
    """A plain-text table: split, images, classes, published images/classes."""
    lines = [f"{'split':<10}{'images':>10}{'classes':>10}   published"]
    for row in rows:
        if row.published is None:
            note = ""
        else:
            note = f"{row.published[0]} / {row.published[1]}" + (
                "" if row.matches_published else "  (differs)"
            )
        lines.append(f"{row.split:<10}{row.images:>10}{row.classes:>10}   {note}".rstrip())
    return "\n".join(lines)


def image_problem(path: str, full_decode: bool = False) -> str | None:
    """None when ``path`` opens as an image, else "missing" or "unreadable (<reason>)"."""
    if not os.path.isfile(path):
        return "missing"
    try:
        with Image.open(path) as image:
            image.verify()
        if full_decode:
            with Image.open(path) as image:
                image.load()
    except Exception as error:  # PIL raises many kinds for corrupt files
        return f"unreadable ({type(error).__name__}: {error})"
    return None


def find_bad_images(
    paths: Iterable[str],
    workers: int = 8,
    full_decode: bool = False,
    progress: bool = True,
) -> list[tuple[str, str]]:
    """``(path, problem)`` for every path that is missing or does not open, in input order."""
    paths = list(paths)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        problems = list(
            tqdm(
                pool.map(lambda p: image_problem(p, full_decode), paths),
                total=len(paths),
                desc="checking images",
                unit="img",
                disable=not progress,
            )
        )
    return [(path, problem) for path, problem in zip(paths, problems) if problem is not None]
