"""Models: trunks, embedders, pooling and the factory that wires them from a config."""

# Importing the modules registers their classes by name (MLP, TorchvisionTrunk, BNInception, ...).
from dmlbench.models import bninception, embedders, factory, multilevel, pooling, small_cnn, trunks  # noqa: F401
from dmlbench.models.factory import ModelFactory, infer_num_features, input_normalization

__all__ = ["ModelFactory", "infer_num_features", "input_normalization"]
