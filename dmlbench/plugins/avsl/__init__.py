"""AVSL, attributable visual similarity learning (Zhang et al., CVPR 2022): a multi-level
embedder, EMA links between levels, a certainty-gated propagation to the final distance D, and
Proxy-Anchor losses on D and on every level. Registered as the training plugin ``AVSL`` and the
embedder ``AVSLEmbedder``; its Proxy-Anchor baseline's loss is ``ProxyAnchorDistanceLoss``;
docs/methods/avsl.md."""

from dmlbench.plugins.avsl.baseline import ProxyAnchorDistanceLoss
from dmlbench.plugins.avsl.modules import AVSLCollector, AVSLEmbedder, split_output
from dmlbench.plugins.avsl.plugin import AVSL, AVSLSimilarity

__all__ = [
    "AVSL",
    "AVSLCollector",
    "AVSLEmbedder",
    "AVSLSimilarity",
    "ProxyAnchorDistanceLoss",
    "split_output",
]
