"""Stanford Online Products (Song et al., CVPR 2016).

Layout (``root`` is the folder containing ``Stanford_Online_Products/``, or that folder itself)::

    Stanford_Online_Products/Ebay_train.txt   (or Info_Files/Ebay_train.txt)
    Stanford_Online_Products/Ebay_test.txt    (or Info_Files/Ebay_test.txt)
    Stanford_Online_Products/bicycle_final/111085122871_0.JPG ...
                                              (or images/bicycle_final/..., as in the
                                              online_products/ tree of the DAS and AVSL repositories)

Each list has the header ``image_id class_id super_class_id path`` and rows such as
``1 1 1 bicycle_final/111085122871_0.JPG``. Labels are ``class_id`` (1..22634), super-labels
``super_class_id`` (1..12). Official split: the list a row comes from (train 59551 images /
11318 classes, test 60502 / 11316).
"""

from __future__ import annotations

from pathlib import Path

from dmlbench.data.download import RemoteFile
from dmlbench.data.official import OfficialFormatDataset
from dmlbench.registry import register

_LISTS = {"train": "Ebay_train.txt", "test": "Ebay_test.txt"}


@register("dataset", "StanfordOnlineProducts")
class StanfordOnlineProducts(OfficialFormatDataset):
    """SOP: 120053 product images, 22634 products in 12 super-classes."""

    registry_name = "StanfordOnlineProducts"
    folder_names = ("Stanford_Online_Products", "SOP", "sop", "online_products")  # the last: DAS, AVSL
    markers = ("Ebay_train.txt", "Info_Files/Ebay_train.txt")
    remote_files = (
        RemoteFile(
            filename="Stanford_Online_Products.zip",
            # The authors' address (CVGL, Stanford) and the Google Drive copy linked from the
            # authors' repository (rksltnl/Deep-Metric-Learning-CVPR16).
            urls=(
                "https://ftp.cs.stanford.edu/cs/cvgl/Stanford_Online_Products.zip",
                "ftp://cs.stanford.edu/cs/cvgl/Stanford_Online_Products.zip",
                "https://drive.usercontent.google.com/download?id=1TclrpQOF_ullUP99wk_gjGN8pKvtErG8"
                "&export=download&confirm=t",
            ),
            md5="7f73d41a2f44250d4779881525aea32e",
            size_hint="2.9 GB",
        ),
    )
    reference_sizes = {"train": (59551, 11318), "test": (60502, 11316)}

    def _load(self) -> None:
        paths, labels, super_labels, split = [], [], [], []
        for split_name, filename in _LISTS.items():
            list_file = self._require(filename, f"Info_Files/{filename}")
            rows = self._read_rows(list_file, 4, header="image_id")
            labels += self._to_ints([row[1] for row in rows], list_file, "class_id")
            super_labels += self._to_ints([row[2] for row in rows], list_file, "super_class_id")
            paths += self._join((row[3] for row in rows), self._image_base(rows))
            split += [split_name] * len(rows)
        self._set_samples(paths, labels, super_labels=super_labels, official_split=split)

    def _image_base(self, rows: list[list[str]]) -> Path:
        """The folder the listed paths are relative to: the data set's, or its ``images/``."""
        images = self.folder / "images"
        if rows and not (self.folder / rows[0][3]).exists() and (images / rows[0][3]).exists():
            return images
        return self.folder
