"""Models: trunks, embedders, pooling and the factory that wires them from a config."""

from dmlbench.models import embedders, factory  # noqa: F401  (registers classes)
from dmlbench.models.factory import ModelFactory, infer_num_features, input_normalization

for _optional in ("small_cnn", "trunks", "bninception", "pooling"):
    try:
        __import__(f"dmlbench.models.{_optional}")
    except ModuleNotFoundError as _error:  # written by a later change; absent modules are skipped
        if _error.name != f"dmlbench.models.{_optional}":
            raise

__all__ = ["ModelFactory", "infer_num_features", "input_normalization"]
