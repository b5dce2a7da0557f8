"""Data sets on disk, transforms, and the fast data path."""

from dmlbench.data.base import RetrievalDataset, TransformedSubset, load_rgb_image

for _optional in ("demo", "cub", "cars", "sop", "inshop", "inaturalist", "image_folder", "csv_dataset"):
    try:
        __import__(f"dmlbench.data.{_optional}")
    except ModuleNotFoundError as _error:  # written by a later change; absent modules are skipped
        if _error.name != f"dmlbench.data.{_optional}":
            raise

__all__ = ["RetrievalDataset", "TransformedSubset", "load_rgb_image"]
