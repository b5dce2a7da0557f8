"""Caltech-UCSD Birds-200-2011 (Wah et al., 2011).

Layout (``root`` is the folder containing ``CUB_200_2011/`` or ``cub2011/CUB_200_2011/`` -- the
folder powerful-benchmarker's README has users extract it to -- or that folder itself)::

    CUB_200_2011/images.txt               "<image id> <NNN.Class_name/file.jpg>"
    CUB_200_2011/image_class_labels.txt   "<image id> <class 1..200>"
    CUB_200_2011/classes.txt              "<class> <NNN.Class_name>" (optional, names only)
    CUB_200_2011/images/NNN.Class_name/*.jpg

Labels are the class numbers 1..200. The official deep-metric-learning split is by class:
1-100 train (5864 images), 101-200 test (5924 images); ``train_test_split.txt`` is the
classification split and is not used.
"""

from __future__ import annotations

from dmlbench.data.download import RemoteFile
from dmlbench.data.official import OfficialFormatDataset
from dmlbench.errors import DatasetError
from dmlbench.registry import register

#: Classes 1..NUM_TRAIN_CLASSES form the official DML training half.
NUM_TRAIN_CLASSES = 100


@register("dataset", "CUB200")
class CUB200(OfficialFormatDataset):
    """CUB-200-2011: 11788 images of 200 bird species; ``class_names[label]`` is the folder name."""

    registry_name = "CUB200"
    # powerful-benchmarker (MLRC, SDM) reads <data>/cub2011/CUB_200_2011
    folder_names = ("CUB_200_2011", "cub2011/CUB_200_2011", "cub2011")
    markers = ("images.txt",)
    remote_files = (
        RemoteFile(
            filename="CUB_200_2011.tgz",
            # The Caltech DATA record of the data set; the md5 is the one published with it
            # and used by the common loaders.
            urls=("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",),
            md5="97eceeb196236b17998738112f37df78",
            size_hint="1.1 GB",
        ),
    )
    reference_sizes = {"train": (5864, 100), "test": (5924, 100)}

    def _load(self) -> None:
        images_file = self._require("images.txt")
        labels_file = self._require("image_class_labels.txt")
        image_rows = self._read_rows(images_file, 2)
        label_of = {
            row[0]: self._to_int(row[1], labels_file, "class") for row in self._read_rows(labels_file, 2)
        }
        missing = [row[0] for row in image_rows if row[0] not in label_of]
        if missing:
            raise DatasetError(
                f"CUB200: image id {missing[0]} of {images_file} has no line in {labels_file} "
                f"({len(missing)} ids missing)"
            )
        paths = self._join((row[1] for row in image_rows), self.folder / "images")
        labels = [label_of[row[0]] for row in image_rows]
        split = ["train" if label <= NUM_TRAIN_CLASSES else "test" for label in labels]
        self._set_samples(paths, labels, official_split=split)
        self.class_names = self._read_class_names()

    def _read_class_names(self) -> dict[int, str]:
        classes_file = self.folder / "classes.txt"
        if not classes_file.is_file():
            return {}
        return {
            self._to_int(row[0], classes_file, "class"): row[1] for row in self._read_rows(classes_file, 2)
        }
