"""Optional faiss backend for the plain k-NN (faiss-cpu, or faiss-gpu when it sees a GPU).

faiss returns the k nearest in its own order among equal scores. To obey the tie rule of
topk.py, each query asks for one neighbour more than needed (two when compared to self): a
query whose k-th and (k+1)-th scores are equal, or whose own index is missing from its list,
is redone with the exact torch path; the others are reordered by (score desc, index asc).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from dmlbench.errors import ConfigError
from dmlbench.evaluation.knn import builtin_score, exact_topk
from dmlbench.evaluation.topk import sort_by_score_then_index

#: faiss' GPU k-selection handles at most this many neighbours.
FAISS_GPU_MAX_K = 2048


def import_faiss():
    """The faiss module, or a :class:`ConfigError` saying how to get it."""
    try:
        import faiss
    except ImportError as error:
        raise ConfigError(
            "backend 'faiss' needs the faiss package: pip install faiss-cpu "
            "(or faiss-gpu), or use backend='torch'"
        ) from error
    return faiss


def faiss_knn_blocks(
    queries: torch.Tensor,
    references: torch.Tensor,
    k: int,
    *,
    exclude_self: bool,
    ranking: str,
    chunk_size: int,
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
    """Same blocks as ``knn.knn_blocks`` (built-in rankings only), searched with a flat faiss index."""
    faiss = import_faiss()
    if ranking not in ("dot", "euclidean"):
        raise ConfigError(f"backend 'faiss' supports ranking 'dot' or 'euclidean', not {ranking!r}")
    dims = references.shape[1]
    index = faiss.IndexFlatIP(dims) if ranking == "dot" else faiss.IndexFlatL2(dims)
    search_k = min(k + 1 + int(exclude_self), len(references))
    if queries.is_cuda and faiss.get_num_gpus() > 0 and search_k <= FAISS_GPU_MAX_K:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(_numpy(references))
    score = builtin_score(ranking)
    for start in range(0, len(queries), chunk_size):
        rows = slice(start, min(start + chunk_size, len(queries)))
        found_scores, found = index.search(_numpy(queries[rows]), search_k)
        values = torch.from_numpy(np.asarray(found_scores)).to(queries.device)
        indices = torch.from_numpy(np.asarray(found)).long().to(queries.device)
        if ranking == "euclidean":
            values = -values
        redo = indices.lt(0).any(dim=1)
        if exclude_self:
            values, indices, self_missing = _drop_self(
                values, indices, torch.arange(rows.start, rows.stop, device=indices.device)
            )
            redo |= self_missing
        if values.shape[1] > k:
            redo |= values[:, k] == values[:, k - 1]
        values, indices = sort_by_score_then_index(values[:, :k].contiguous(), indices[:, :k].contiguous())
        redo_rows = redo.nonzero().squeeze(1)
        if redo_rows.numel():
            self_index = (redo_rows + rows.start) if exclude_self else None
            exact_values, exact_indices = exact_topk(
                queries[rows][redo_rows], references, k, score=score, self_index=self_index
            )
            values[redo_rows], indices[redo_rows] = exact_values.to(values.dtype), exact_indices
        yield rows, values, indices


def _drop_self(values: torch.Tensor, indices: torch.Tensor, self_index: torch.Tensor):
    """Remove each row's own index (or its last entry if absent); also say where it was absent."""
    is_self = indices == self_index[:, None]
    missing = ~is_self.any(dim=1)
    is_self[missing, -1] = True
    is_self &= is_self.cumsum(dim=1) == 1  # only the first match, in case of repeated ids
    keep = ~is_self
    width = indices.shape[1] - 1
    return values[keep].view(-1, width), indices[keep].view(-1, width), missing


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float32)
