"""AVSL, attributable visual similarity learning (Zhang et al., CVPR 2022): a multi-level
embedder, EMA links between levels, a certainty-gated propagation to the final distance D, and
Proxy-Anchor losses on D and on every level. Registered as the training plugin ``AVSL`` and the
embedder ``AVSLEmbedder``; docs/methods/avsl.md."""

from dmlbench.plugins.avsl.modules import AVSLCollector, AVSLEmbedder, split_output
from dmlbench.plugins.avsl.plugin import AVSL, AVSLSimilarity

__all__ = ["AVSL", "AVSLCollector", "AVSLEmbedder", "AVSLSimilarity", "split_output"]
