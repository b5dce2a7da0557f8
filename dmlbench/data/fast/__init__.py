"""The fast data path: GPU JPEG decoding with on-device augmentation, and a pre-resized image
cache. Both are optional; the PIL + torchvision DataLoader stays the reference path."""

from dmlbench.data.fast.cache import PreResizedDataset, pre_resized
from dmlbench.data.fast.loader import GpuJpegBatchLoader, fast_loader_available
from dmlbench.data.fast.plan import AugmentationPlan

__all__ = ["AugmentationPlan", "GpuJpegBatchLoader", "PreResizedDataset", "fast_loader_available", "pre_resized"]
