"""The contextual-similarity method of Liao, Tsiligkaridis and Kulis, "Supervised Metric Learning
for Retrieval via Contextual Similarity Optimization" (ICML 2023), as dmlbench components.

- :class:`ContextualHybridLoss` (loss): contextual + contrastive + similarity regulariser,
  pure functions in :mod:`dmlbench.plugins.contextual.functional`;
- :class:`HierarchicalSampler` (sampler): each half-batch holds classes of one super-class (SOP);
- :class:`ContextualEmbedder` (model): [LayerNorm without affine ->] Linear 512 -> L2;
- :class:`TrainProjector` (training plugin): the 224-px recipe's train-only 512 -> 2048 projector.

docs/methods/contextual.md gives the math, the recipes and the sources; exp_configs
``{cub,car,sop,inaturalist}_contextual`` and ``{cub,car,sop}_contextual_224`` hold the recipes.
"""

from dmlbench.plugins.contextual.loss import ContextualHybridLoss
from dmlbench.plugins.contextual.model import ContextualEmbedder, TrainProjector
from dmlbench.plugins.contextual.sampler import HierarchicalSampler

__all__ = ["ContextualEmbedder", "ContextualHybridLoss", "HierarchicalSampler", "TrainProjector"]
