"""iNaturalist 2021 "mini" training set, split for metric learning as in the contextual-similarity
paper (Liao, Tsiligkaridis, Kulis, ICML 2023).

Layout (``root`` is the folder containing ``iNaturalist2021/``, or that folder itself)::

    iNaturalist2021/train_mini.json                  iNat 2021 COCO-style annotations
    iNaturalist2021/train_mini/<image_dir_name>/<uuid>.jpg
    iNaturalist2021/iNaturalist_train.txt            optional: the paper's split files,
    iNaturalist2021/iNaturalist_test.txt             lines "<image_dir_name>/<uuid>.jpg,<super>,<class>"

The paper's resized copy (a folder holding the two split files next to the class folders,
``train_mini_resized/``) is read as well: images are then looked up in the folder itself.

Labels: the iNat category id (0..9999, the number that starts ``image_dir_name``).
Super-labels: the index of the category's ``supercategory`` in the sorted list of the 11
super-category names (Amphibians=0, Animalia=1, ..., Reptiles=10), as in the paper's files.

Official split: classes are split 50/50 within each super-category (``n // 2`` test classes,
the rest train); 10000 classes give 5003 train / 4997 test classes, 250150 / 249850 images.
The paper drew its split with an unseeded shuffle and published the resulting files; when those
files are present they define the split. Without them, the split is drawn here with
``numpy.random.default_rng(split_seed)``: same sizes per super-category, but not the same
classes as the paper.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dmlbench.data.download import RemoteFile
from dmlbench.data.official import OfficialFormatDataset
from dmlbench.errors import DatasetError
from dmlbench.registry import register

_S3 = "https://ml-inat-competition-datasets.s3.amazonaws.com/2021/"
_PAPER_SPLITS = (
    "https://raw.githubusercontent.com/Chris210634/metric-learning-using-contextual-similarity/main/data/"
)
SPLIT_FILES = {"train": "iNaturalist_train.txt", "test": "iNaturalist_test.txt"}


def class_split_per_supercategory(
    category_ids: np.ndarray, super_labels: np.ndarray, seed: int
) -> dict[int, str]:
    """Within each super-category (in increasing order), shuffle its sorted category ids with one
    ``default_rng(seed)`` and make the first ``n // 2`` test, the rest train."""
    rng = np.random.default_rng(seed)
    split_of: dict[int, str] = {}
    for super_label in np.unique(super_labels):
        members = rng.permutation(np.sort(category_ids[super_labels == super_label]))
        num_test = len(members) // 2
        split_of.update({int(c): "test" for c in members[:num_test]})
        split_of.update({int(c): "train" for c in members[num_test:]})
    return split_of


@register("dataset", "INaturalist")
class INaturalist(OfficialFormatDataset):
    """iNaturalist 2021 mini (500000 images, 10000 species, 11 super-categories)."""

    registry_name = "INaturalist"
    folder_names = ("iNaturalist2021", "inaturalist2021", "iNat2021", "inat2021", "train_mini_resized")
    markers = ("train_mini.json", "iNaturalist_train.txt", "train.json")
    remote_files = (
        # md5 values as published for the iNat 2021 competition files (also used by torchvision).
        RemoteFile(
            filename="train_mini.json.tar.gz",
            urls=(_S3 + "train_mini.json.tar.gz",),
            md5="395a35be3651d86dc3b0d365b8ea5f92",
            subdir="iNaturalist2021",
            size_hint="45 MB",
        ),
        RemoteFile(
            filename="train_mini.tar.gz",
            urls=(_S3 + "train_mini.tar.gz",),
            md5="db6ed8330e634445efc8fec83ae81442",
            subdir="iNaturalist2021",
            size_hint="42 GB",
        ),
        # The paper's split files; no checksum is published for them.
        RemoteFile(
            filename=SPLIT_FILES["train"],
            urls=(_PAPER_SPLITS + SPLIT_FILES["train"],),
            subdir="iNaturalist2021",
            optional=True,
        ),
        RemoteFile(
            filename=SPLIT_FILES["test"],
            urls=(_PAPER_SPLITS + SPLIT_FILES["test"],),
            subdir="iNaturalist2021",
            optional=True,
        ),
    )
    reference_sizes = {"train": (250150, 5003), "test": (249850, 4997)}

    def __init__(
        self,
        root: str | Path,
        transform: Callable[[Image.Image], Any] | None = None,
        download: bool = False,
        annotations: str = "train_mini.json",
        use_split_files: bool = True,
        split_seed: int = 0,
    ) -> None:
        self.annotations_name = annotations
        self.use_split_files = use_split_files
        self.split_seed = split_seed
        super().__init__(root, transform=transform, download=download)

    def _load(self) -> None:
        split_paths = {split: self.folder / name for split, name in SPLIT_FILES.items()}
        if self.use_split_files and all(path.is_file() for path in split_paths.values()):
            self._load_split_files(split_paths)
        else:
            self._load_annotations(self._require(self.annotations_name))

    @property
    def image_folder(self) -> Path:
        """Where the class folders are: ``train_mini/`` when present, else the folder itself."""
        stem = Path(self.annotations_name).name.split(".")[0]
        nested = self.folder / stem
        return nested if nested.is_dir() else self.folder

    def _load_split_files(self, split_paths: dict[str, Path]) -> None:
        paths, labels, super_labels, split = [], [], [], []
        for split_name, list_file in split_paths.items():
            rows = []
            with open(list_file, encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    fields = [field.strip() for field in line.split(",")]
                    if len(fields) != 3:
                        raise DatasetError(
                            f"INaturalist: {list_file} line {number} should be "
                            f"'<path>,<super label>,<label>': {line.strip()!r}"
                        )
                    rows.append(fields)
            paths += self._join((row[0] for row in rows), self.image_folder)
            super_labels += self._to_ints([row[1] for row in rows], list_file, "super label")
            labels += self._to_ints([row[2] for row in rows], list_file, "label")
            split += [split_name] * len(rows)
        self.split_source = "files"
        self._set_samples(paths, labels, super_labels=super_labels, official_split=split)

    def _load_annotations(self, annotations_file: Path) -> None:
        try:
            with open(annotations_file, encoding="utf-8") as handle:
                data = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DatasetError(f"INaturalist: {annotations_file} is not valid JSON ({error})") from error
        for key in ("images", "categories", "annotations"):
            if key not in data:
                raise DatasetError(f"INaturalist: {annotations_file} has no {key!r} list")
        categories = data["categories"]
        self.supercategories: list[str] = sorted({c["supercategory"] for c in categories})
        super_index = {name: i for i, name in enumerate(self.supercategories)}
        super_of = {c["id"]: super_index[c["supercategory"]] for c in categories}
        self.class_names = {c["id"]: c.get("name", "") for c in categories}
        file_of = {image["id"]: image["file_name"] for image in data["images"]}

        image_ids = [a["image_id"] for a in data["annotations"]]
        labels = np.array([a["category_id"] for a in data["annotations"]], dtype=np.int64)
        missing = [i for i in image_ids if i not in file_of]
        if missing:
            raise DatasetError(
                f"INaturalist: {annotations_file}: annotation for image id {missing[0]} has no image entry"
            )
        unknown = set(labels.tolist()) - set(super_of)
        if unknown:
            raise DatasetError(
                f"INaturalist: {annotations_file}: category id {min(unknown)} is not in 'categories'"
            )
        category_ids = np.array(sorted(super_of), dtype=np.int64)
        split_of = class_split_per_supercategory(
            category_ids, np.array([super_of[c] for c in category_ids]), self.split_seed
        )
        paths = self._join(file_of[i] for i in image_ids)
        super_labels = [super_of[int(label)] for label in labels]
        split = [split_of[int(label)] for label in labels]
        self.split_source = f"seed {self.split_seed}"
        self._set_samples(paths, labels, super_labels=super_labels, official_split=split)
