"""Stanford Cars / Cars196 (Krause et al., 2013), in the all-images form used for metric learning.

Layout (``root`` is the folder containing ``cars196/``, or that folder itself)::

    cars196/cars_annos.mat   MATLAB struct array ``annotations`` (1 x 16185), fields
                             relative_im_path ("car_ims/000001.jpg"), bbox_x1, bbox_y1,
                             bbox_x2, bbox_y2, class (1..196), test; cell array ``class_names``
    cars196/car_ims/000001.jpg ... 016185.jpg

Labels are the class numbers 1..196. The official deep-metric-learning split is by class:
1-98 train (8054 images), 99-196 test (8131 images). The ``test`` field of the annotations is
the classification split and is not used.

The Stanford download pages are gone. The download tries the last official address and the
Internet Archive's copy of the original files; both are checked against the published md5.
"""

from __future__ import annotations

import numpy as np
import scipy.io

from dmlbench.data.download import RemoteFile
from dmlbench.data.official import OfficialFormatDataset
from dmlbench.errors import DatasetError
from dmlbench.registry import register

NUM_TRAIN_CLASSES = 98

_ORIGINAL = "http://ai.stanford.edu/~jkrause/car196/"
_OLDEST = "http://imagenet.stanford.edu/internal/car196/"
_ARCHIVED = "https://web.archive.org/web/2019id_/" + _OLDEST


@register("dataset", "Cars196")
class Cars196(OfficialFormatDataset):
    """Cars196: 16185 images of 196 car models; ``class_names[label - 1]`` names a class."""

    registry_name = "Cars196"
    folder_names = ("cars196", "Cars196", "car196", "stanford_cars")
    markers = ("cars_annos.mat",)
    # md5 values: the ones published with the original files and used by the common loaders.
    remote_files = (
        RemoteFile(
            filename="car_ims.tgz",
            urls=(_ORIGINAL + "car_ims.tgz", _ARCHIVED + "car_ims.tgz"),
            md5="d5c8f0aa497503f355e17dc7886c3f14",
            subdir="cars196",
            size_hint="1.8 GB",
        ),
        RemoteFile(
            filename="cars_annos.mat",
            urls=(_ORIGINAL + "cars_annos.mat", _ARCHIVED + "cars_annos.mat"),
            md5="b407c6086d669747186bd1d764ff9dbc",
            subdir="cars196",
            size_hint="0.4 MB",
        ),
    )
    reference_sizes = {"train": (8054, 98), "test": (8131, 98)}

    def _load(self) -> None:
        annos_file = self._require("cars_annos.mat")
        try:
            mat = scipy.io.loadmat(annos_file, squeeze_me=True)
        except (ValueError, OSError, NotImplementedError, TypeError) as error:
            raise DatasetError(f"Cars196: cannot read {annos_file} as a MATLAB file ({error})") from error
        if "annotations" not in mat:
            raise DatasetError(f"Cars196: {annos_file} has no 'annotations' variable")
        annotations = np.atleast_1d(mat["annotations"])
        fields = annotations.dtype.names or ()
        for needed in ("relative_im_path", "class"):
            if needed not in fields:
                raise DatasetError(
                    f"Cars196: {annos_file} annotations lack the field {needed!r} (fields: {', '.join(fields)})"
                )
        relative_paths = [str(p) for p in annotations["relative_im_path"]]
        labels = annotations["class"].astype(np.int64)
        paths = self._join(relative_paths)
        split = np.where(labels <= NUM_TRAIN_CLASSES, "train", "test")
        self._set_samples(paths, labels, official_split=split)
        names = mat.get("class_names")
        self.class_names = [] if names is None else [str(n) for n in np.atleast_1d(names)]
