"""The fast data path: Pillow decoding and augmentation in worker processes with normalisation on
the device (:class:`PillowBatchLoader`), and a pre-resized image cache. Both are optional; the
PIL + torchvision DataLoader stays the reference path."""

from dmlbench.data.fast.cache import PreResizedDataset, pre_resized
from dmlbench.data.fast.loader import PillowBatchLoader, fast_loader_available
from dmlbench.data.fast.plan import AugmentationPlan

__all__ = [
    "AugmentationPlan",
    "PillowBatchLoader",
    "PreResizedDataset",
    "fast_loader_available",
    "pre_resized",
]
