"""DeepFashion In-shop Clothes Retrieval Benchmark (Liu et al., CVPR 2016).

Layout (``root`` is the folder containing ``InShop/``, or that folder itself)::

    InShop/Eval/list_eval_partition.txt   (or InShop/list_eval_partition.txt)
    InShop/img/WOMEN/Dresses/id_00000002/02_1_front.jpg ...

``list_eval_partition.txt``: line 1 the number of images (52712), line 2 the header
``image_name item_id evaluation_status``, then rows such as
``img/WOMEN/Dresses/id_00000002/02_1_front.jpg id_00000002 train``. Official split: the
``evaluation_status`` (train 25882 images / 3997 items, query 14218, gallery 12612, 3985 items);
evaluation is query against gallery, not each split against itself.

Labels: the item ids in sorted order mapped to 0, 1, 2, ...; ``item_ids[label]`` is the id string.

The images are only distributed through the authors' Google Drive folder, so the download is
manual (see ``manual_download``).
"""

from __future__ import annotations

import numpy as np

from dmlbench.data.official import OfficialFormatDataset
from dmlbench.errors import DatasetError
from dmlbench.registry import register

PROJECT_PAGE = "http://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/InShopRetrieval.html"
DRIVE_FOLDER = "https://drive.google.com/drive/folders/0B7EVK8r0v71pVDZFQXRsMDZCX1E"
SPLITS = ("train", "query", "gallery")


@register("dataset", "InShop")
class InShop(OfficialFormatDataset):
    """In-Shop: 52712 images of 7982 clothing items; splits train / query / gallery."""

    registry_name = "InShop"
    folder_names = ("InShop", "inshop", "In-shop Clothes Retrieval Benchmark", "In-shop")
    markers = ("Eval/list_eval_partition.txt", "list_eval_partition.txt")
    manual_download = (
        "In-Shop is downloaded by hand: from the 'In-shop Clothes Retrieval Benchmark' Google "
        f"Drive folder ({DRIVE_FOLDER}, linked from {PROJECT_PAGE}) fetch Img/img.zip (not "
        "img_highres.zip) and Eval/list_eval_partition.txt, then unzip img.zip into {root}/InShop "
        "so that {root}/InShop/img/ and {root}/InShop/Eval/list_eval_partition.txt exist"
    )
    reference_sizes = {"train": (25882, 3997), "query": (14218, 3985), "gallery": (12612, 3985)}

    def _load(self) -> None:
        list_file = self._require(*self.markers)
        with open(list_file, encoding="utf-8") as handle:
            first_line = handle.readline().strip()
        declared = int(first_line) if first_line.isdigit() else None
        rows = self._read_rows(list_file, 3, skip=0 if declared is None else 1, header="image_name")
        if declared is not None and declared != len(rows):
            raise DatasetError(
                f"InShop: {list_file} declares {declared} images on line 1 but lists {len(rows)}; "
                f"the file is truncated or edited, download it again"
            )
        statuses = np.array([row[2] for row in rows], dtype=str)
        unknown = sorted(set(statuses.tolist()) - set(SPLITS))
        if unknown:
            raise DatasetError(
                f"InShop: {list_file} has evaluation_status {unknown[0]!r}; expected one of {', '.join(SPLITS)}"
            )
        item_of_sample = np.array([row[1] for row in rows], dtype=str)
        self.item_ids: list[str] = sorted(set(item_of_sample.tolist()))
        labels = np.searchsorted(np.array(self.item_ids, dtype=str), item_of_sample)
        paths = self._join(row[0] for row in rows)
        self._set_samples(paths, labels, official_split=statuses)
