"""Full-size synthetic data sets in the official on-disk layouts (docs/datasets.md).

Each ``plan_*`` function returns the list of images to draw -- ``(relative path, class index)``,
class indices counting from 0 over the whole data set -- and ``write_*`` writes the metadata
files the loaders read. The counts are the published ones:

| data set | images | classes | split as published |
|---|---|---|---|
| CUB-200-2011 | 11,788 | 200 | classes 1-100: 5,864 images, 101-200: 5,924 |
| Cars196 | 16,185 | 196 | classes 1-98: 8,054, 99-196: 8,131 |
| Stanford Online Products | 120,053 | 22,634 | train 59,551 / 11,318; test 60,502 / 11,316; 2-12 per class |
| In-Shop | 52,712 | 7,982 | train 25,882 / 3,997 items; query 14,218 and gallery 12,612 over 3,985 |

Sources: Wah et al. 2011 (CUB), Krause et al. 2013 (Cars196), Oh Song et al. 2016 (SOP),
Liu et al. 2016 (DeepFashion In-Shop).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

SOP_SUPER_CLASSES = (
    "bicycle",
    "cabinet",
    "chair",
    "coffee_maker",
    "fan",
    "kettle",
    "lamp",
    "mug",
    "sofa",
    "stapler",
    "table",
    "toaster",
)


@dataclass(frozen=True)
class Image:
    """One image to draw: where it goes (relative to the data set folder) and its class index."""

    path: str
    label: int


def even_counts(total: int, classes: int) -> list[int]:
    """``classes`` counts summing to ``total`` that differ by at most one (larger ones first)."""
    base, extra = divmod(total, classes)
    return [base + (1 if c < extra else 0) for c in range(classes)]


def bounded_counts(rng: np.random.Generator, total: int, classes: int, low: int, high: int) -> list[int]:
    """``classes`` counts in ``[low, high]`` summing to ``total``: uniform draws, then +-1 steps on
    random classes until the sum is right (SOP's 2-12 images per product)."""
    if not low * classes <= total <= high * classes:
        raise ValueError(f"{total} images cannot fill {classes} classes with {low}-{high} each")
    counts = rng.integers(low, high + 1, size=classes)
    while (difference := int(counts.sum()) - total) != 0:
        step = -1 if difference > 0 else 1
        movable = np.flatnonzero((counts > low) if step < 0 else (counts < high))
        chosen = rng.choice(movable, size=min(abs(difference), movable.size), replace=False)
        counts[chosen] += step
    return counts.tolist()


# ---- CUB-200-2011 ----------------------------------------------------------------------------


def plan_cub() -> list[Image]:
    counts = even_counts(5864, 100) + even_counts(5924, 100)
    images = []
    for label, count in enumerate(counts):
        folder = f"{label + 1:03d}.Bird_{label + 1}"
        images += [Image(f"images/{folder}/Bird_{label + 1}_{k:04d}.jpg", label) for k in range(count)]
    return images


def write_cub(folder: Path, images: list[Image]) -> None:
    (folder / "images.txt").write_text(
        "".join(f"{i} {image.path.removeprefix('images/')}\n" for i, image in enumerate(images, 1))
    )
    (folder / "image_class_labels.txt").write_text(
        "".join(f"{i} {image.label + 1}\n" for i, image in enumerate(images, 1))
    )
    (folder / "classes.txt").write_text("".join(f"{c} {c:03d}.Bird_{c}\n" for c in range(1, 201)))
    (folder / "train_test_split.txt").write_text(
        "".join(f"{i} {int(image.label < 100)}\n" for i, image in enumerate(images, 1))
    )


# ---- Cars196 ---------------------------------------------------------------------------------


def plan_cars() -> list[Image]:
    labels = [c for c, n in enumerate(even_counts(8054, 98) + even_counts(8131, 98)) for _ in range(n)]
    return [Image(f"car_ims/{i:06d}.jpg", label) for i, label in enumerate(labels, 1)]


def write_cars(folder: Path, images: list[Image]) -> None:
    """``cars_annos.mat`` as the official file: a 1 x N struct array ``annotations`` and a 1 x 196
    cell array ``class_names`` (bounding boxes cover the whole image; ``test`` alternates)."""
    fields = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]
    annotations = np.zeros((1, len(images)), dtype=[(f, "O") for f in fields])
    for i, image in enumerate(images):
        annotations[0, i] = (image.path, 1, 1, 48, 48, image.label + 1, i % 2)
    names = np.empty((1, 196), dtype=object)
    for c in range(196):
        names[0, c] = f"Car model {c + 1}"
    scipy.io.savemat(folder / "cars_annos.mat", {"annotations": annotations, "class_names": names})


# ---- Stanford Online Products ----------------------------------------------------------------


def plan_sop(seed: int = 0) -> list[Image]:
    rng = np.random.default_rng(seed)
    counts = bounded_counts(rng, 59551, 11318, 2, 12) + bounded_counts(rng, 60502, 11316, 2, 12)
    images = []
    for label, count in enumerate(counts):
        super_class = SOP_SUPER_CLASSES[label * len(SOP_SUPER_CLASSES) // len(counts)]
        product = 111085122871 + label
        images += [Image(f"{super_class}_final/{product}_{k}.JPG", label) for k in range(count)]
    return images


def write_sop(folder: Path, images: list[Image]) -> None:
    """``Ebay_train.txt`` (classes 1-11318) and ``Ebay_test.txt`` (11319-22634), ids over both."""
    header = "image_id class_id super_class_id path\n"
    rows: dict[str, list[str]] = {"train": [header], "test": [header]}
    for image_id, image in enumerate(images, 1):
        super_id = SOP_SUPER_CLASSES.index(image.path.split("_final/")[0]) + 1
        split = "train" if image.label < 11318 else "test"
        rows[split].append(f"{image_id} {image.label + 1} {super_id} {image.path}\n")
    for split, lines in rows.items():
        (folder / f"Ebay_{split}.txt").write_text("".join(lines))


# ---- In-Shop ---------------------------------------------------------------------------------

INSHOP_STATUS_SIZES = {"train": (25882, 3997), "query": (14218, 3985), "gallery": (12612, 3985)}


def plan_inshop() -> tuple[list[Image], list[str]]:
    """Images and their evaluation status: 3,997 training items, then 3,985 test items whose
    images are split between query and gallery (each test item has at least one of each)."""
    images, statuses = [], []
    train_counts = even_counts(25882, 3997)
    query_counts, gallery_counts = even_counts(14218, 3985), even_counts(12612, 3985)
    per_item = [("train", [n]) for n in train_counts] + [
        ("test", [q, g]) for q, g in zip(query_counts, gallery_counts)
    ]
    for label, (kind, counts) in enumerate(per_item):
        gender, category = ("WOMEN", "Dresses") if label % 2 else ("MEN", "Shirts_Polos")
        item = f"id_{label + 1:08d}"
        names = ["train"] if kind == "train" else ["query", "gallery"]
        k = 0
        for status, count in zip(names, counts):
            for _ in range(count):
                images.append(
                    Image(f"img/{gender}/{category}/{item}/{k // 4 + 1:02d}_{k % 4 + 1}_front.jpg", label)
                )
                statuses.append(status)
                k += 1
    return images, statuses


def write_inshop(folder: Path, images: list[Image], statuses: list[str]) -> None:
    (folder / "Eval").mkdir(parents=True, exist_ok=True)
    lines = [f"{len(images)}\n", "image_name item_id evaluation_status\n"]
    for image, status in zip(images, statuses):
        lines.append(f"{image.path} id_{image.label + 1:08d} {status}\n")
    (folder / "Eval" / "list_eval_partition.txt").write_text("".join(lines))
