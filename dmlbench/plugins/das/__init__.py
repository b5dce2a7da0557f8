"""DAS, densely-anchored sampling (Liu et al., ECCV 2022): extra embedding-space anchors made by
discriminative feature scaling and memorized transformation shifting, handed to any unchanged loss
and miner. Registered as the training plugin ``DAS``."""

from dmlbench.plugins.das.plugin import DAS
from dmlbench.plugins.das.state import DASState

__all__ = ["DAS", "DASState"]
