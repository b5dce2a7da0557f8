"""Data sets on disk, transforms, and the fast data path."""

# Importing the loaders registers them by name (CUB200, Cars196, ..., DemoShapes).
from dmlbench.data import (  # noqa: F401
    cars,
    csv_dataset,
    cub,
    demo,
    image_folder,
    inaturalist,
    inshop,
    sop,
)
from dmlbench.data.base import RetrievalDataset, TransformedSubset, load_rgb_image

__all__ = ["RetrievalDataset", "TransformedSubset", "load_rgb_image"]
