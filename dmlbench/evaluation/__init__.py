"""Evaluation: exact memory-bounded k-NN and the MLRC retrieval metrics.

Main entry point: :func:`retrieval_metrics`, its options one :class:`RetrievalSettings`. The
pieces (``knn``, ``metrics``, ``topk``, ``clustering``) are plain functions of tensors that can
be used on their own. Command line:
``python -m dmlbench.evaluation --embeddings E.npy --labels L.npy``.
"""

from dmlbench.evaluation.clustering import kmeans
from dmlbench.evaluation.knn import Similarity, exact_knn, knn_blocks
from dmlbench.evaluation.metrics import (
    map_at_r,
    neighbour_hits,
    precision_at_1,
    r_precision,
    recall_at_k,
    relevant_counts,
)
from dmlbench.evaluation.retrieval import retrieval_metrics
from dmlbench.evaluation.retrieval_settings import RetrievalSettings
from dmlbench.evaluation.topk import topk_lowest_index_ties

__all__ = [
    "RetrievalSettings",
    "Similarity",
    "exact_knn",
    "kmeans",
    "knn_blocks",
    "map_at_r",
    "neighbour_hits",
    "precision_at_1",
    "r_precision",
    "recall_at_k",
    "relevant_counts",
    "retrieval_metrics",
    "topk_lowest_index_ties",
]
