"""The classification baseline of Zhai & Wu, "Classification is a Strong Baseline for Deep Metric
Learning" (BMVC 2019), as dmlbench components.

Model: ``x = L2norm(Linear?(LayerNorm_noaffine(GAP(trunk(image)))))``
(:class:`NormalizedEmbedder`; no Linear when the embedding keeps the trunk's width).
Loss: normalised softmax, ``CE(W_n x / T, y)`` with every class weight row L2-normalised and
``T = 0.05``: :class:`NormSoftmaxLoss`, pytorch-metric-learning's ``NormalizedSoftmaxLoss``
(which computes exactly this) with the official code's class-weight initialisation, uniform in
+-1/sqrt(d) instead of N(0, 1); tests/plugins/classification checks both against direct computations.
Batches: :class:`ClassBalancedSampler` (``batch_size / images_per_class`` classes, each with
``images_per_class`` images). Warm-up: ``frozen_for_epochs: {trunk: 1}``. Evaluation: the raw
features (cosine) and their binarised codes ``1[x > 0]`` compared by Hamming distance
(``retrieval_metrics`` with ``RetrievalSettings(binarize=True)``, config key ``eval_binarize``).

The exp_configs ``cub_classification``, ``car_classification``, ``sop_classification`` and
``inshop_classification`` hold the paper's settings.
"""

from dmlbench.plugins.classification.embedder import NormalizedEmbedder
from dmlbench.plugins.classification.loss import NormSoftmaxLoss
from dmlbench.plugins.classification.sampler import ClassBalancedSampler

__all__ = ["ClassBalancedSampler", "NormSoftmaxLoss", "NormalizedEmbedder"]
