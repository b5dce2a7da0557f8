"""How :func:`dmlbench.evaluation.retrieval.retrieval_metrics` ranks and scores: one settings
object instead of a long list of keyword arguments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from dmlbench.errors import ConfigError
from dmlbench.evaluation.knn import BUILTIN_RANKINGS

BACKENDS = ("torch", "faiss")


@dataclass(frozen=True)
class RetrievalSettings:
    """Options of ``retrieval_metrics`` (the defaults are the MLRC protocol's).

    Attributes:
        k: neighbours per query (default: what MAP@R needs, see :mod:`dmlbench.evaluation.retrieval`).
        recall_at: the K of Recall@K (e.g. (1, 2, 4, 8) or (1, 10, 100, 1000)).
        chunk_size: queries per block; bounds the extra memory to a few [chunk_size, N] float32
            blocks (default: 256 MiB blocks on CPU, 2 GiB on CUDA; 256 with a custom similarity).
        reference_chunk_size: references per block (default: all; 1024 with a custom similarity
            scoring all pairs).
        normalize: L2-normalise the embeddings first (the MLRC protocol does).
        ranking: "dot" (cosine when normalised) or "euclidean" (smallest L2 distance first).
        similarity: a custom pairwise similarity (contract: ``knn.Similarity``). With
            ``rerank_k=None`` it scores all pairs, in [chunk_size, reference_chunk_size] blocks;
            with ``rerank_k=c`` it re-ranks the c nearest by the plain embeddings.
        rerank_k: see ``similarity``.
        binarize: rank by Hamming distance between sign codes 1[x > 0].
        backend: "torch" (exact, chunked) or "faiss" (plain k-NN only; needs faiss installed).
        device: where to compute (default: the embeddings' CUDA device, else CUDA if present).
        symmetric: compared to self, score each pair of [chunk_size, chunk_size] blocks once
            and use it both ways (half the matrix products; default: on CPU when k is small).
        nmi, ami: also k-means (clusters = classes, seeded by ``kmeans_seed``) on the query
            embeddings, scored by NMI / AMI.
    """

    k: int | None = None
    recall_at: Sequence[int] = ()
    chunk_size: int | None = None
    reference_chunk_size: int | None = None
    normalize: bool = True
    ranking: str = "dot"
    similarity: Callable[[Any, Any], torch.Tensor] | None = None
    rerank_k: int | None = None
    binarize: bool = False
    backend: str = "torch"
    device: str | torch.device | None = None
    symmetric: bool | None = None
    nmi: bool = False
    ami: bool = False
    kmeans_seed: int = 0

    @property
    def scores_all_pairs(self) -> bool:
        """A custom similarity scores every pair (no re-ranking of plain neighbours)."""
        return self.similarity is not None and self.rerank_k is None

    def check(self) -> None:
        """Refuse contradictory options before any work is done (:class:`ConfigError`)."""
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"unknown evaluation backend {self.backend!r}; choose one of {', '.join(BACKENDS)}"
            )
        if self.ranking not in BUILTIN_RANKINGS:
            raise ConfigError(
                f"unknown ranking {self.ranking!r}; choose one of {', '.join(BUILTIN_RANKINGS)}"
            )
        if self.similarity is not None and self.binarize:
            raise ConfigError("binarize and a custom similarity cannot be combined")
        if self.scores_all_pairs:
            if self.backend == "faiss":
                raise ConfigError(
                    "backend 'faiss' cannot score all pairs with a custom similarity; "
                    "pass rerank_k or use backend='torch'"
                )
            if self.nmi or self.ami:
                raise ConfigError(
                    "NMI/AMI need plain embeddings; they cannot be computed when a custom similarity "
                    "scores all pairs"
                )
        for name, value in (
            ("chunk_size", self.chunk_size),
            ("reference_chunk_size", self.reference_chunk_size),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive number of samples, got {value!r}")
