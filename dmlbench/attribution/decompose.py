"""The similarity of two images as a sum over pairs of spatial positions (pure tensor functions).

Stylianou, Souvenir, Pless, "Visualizing Deep Similarity Networks", WACV 2019. Let ``f(i)`` be
the trunk's last feature map at position ``i`` (``C`` channels, ``P = h w`` positions), ``y``
the pooled feature vector and ``e`` the embedding before its L2 normalisation.

1. Pooling splits ``y`` into per-position parts, ``y = sum_i y(i)`` (:func:`position_parts`):

   - ``avg``: ``y(i) = f(i) / P``;
   - ``max``: ``y_c(i) = f_c(i)`` at the first position of channel c's maximum, 0 elsewhere (the
     value max pooling takes; a tie moves nothing, the tied values are equal);
   - ``avg+max``: the sum of the two;
   - ``gem``: ``y_c(i) = y_c a_c(i)^p / sum_j a_c(j)^p`` with ``a = max(f, eps)``. GeM is
     homogeneous of degree 1, so this is gradient x activation, ``a_c(i) dy_c/da_c(i)`` (Euler):
     an attribution of ``y_c``, not a value the network computes per position.

2. The embedder, at this image, is an affine map ``e = M y + c`` (:class:`AffineForm`; the
   bias ``c`` belongs to no position and is shared equally: with average pooling
   ``W mean_i f(i) + b = mean_i (W f(i) + b)``, so for ``avg`` this is the computation itself).
   Each position's embedding term is ``g(i) = M y(i) + c / P`` and ``e = sum_i g(i)``.

3. The cosine similarity is then a sum over position pairs (:func:`pair_contributions`)::

       cos(q, n) = <e_q, e_n> / (|e_q| |e_n|) = sum_{i, j} <g_q(i), g_n(j)> / (|e_q| |e_n|)

   For avg pooling and a linear embedder, ``<g_q(i), g_n(j)> = <W f_q(i) + b, W f_n(j) + b> /
   (P_q P_n)``: the paper's decomposition, with the bias spread over the positions.

Heatmaps (:func:`heatmaps`) are the two marginals: ``h_q(i) = sum_j c_ij`` over the query's
positions, ``h_n(j) = sum_i c_ij`` over the neighbour's; each sums to the similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: Poolings whose position split is the computation itself (``gem`` is an attribution).
EXACT_POOLINGS = ("avg", "max", "avg+max")
POOLINGS = (*EXACT_POOLINGS, "gem")


@dataclass(frozen=True)
class AffineForm:
    """``e = matrix @ y + offset`` for one image: ``matrix`` [D, C], ``offset`` [D]. ``exact``:
    the embedder is this map (up to a per-image scalar such as a LayerNorm scale); otherwise it
    is the embedder's linearisation at this image's ``y`` (with ``offset = e - matrix @ y``)."""

    matrix: Tensor
    offset: Tensor
    exact: bool


def position_parts(maps: Tensor, pooling: str, gem_p: float = 3.0, gem_eps: float = 1e-6) -> Tensor:
    """Per-position parts [B, C, P] of the pooled features of ``maps`` [B, C, h, w]: their sum
    over the last dimension is the pooled vector (module docstring, step 1)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r}: expected one of {', '.join(POOLINGS)}")
    flat = maps.flatten(2)
    positions = flat.shape[-1]
    if pooling == "gem":
        powered = flat.clamp(min=gem_eps).pow(gem_p)
        pooled = powered.mean(dim=-1, keepdim=True).pow(1.0 / gem_p)
        return pooled * powered / powered.sum(dim=-1, keepdim=True)
    parts = torch.zeros_like(flat)
    if pooling in ("avg", "avg+max"):
        parts = parts + flat / positions
    if pooling in ("max", "avg+max"):
        first_max = flat.argmax(dim=-1, keepdim=True)  # the first maximal position
        parts = parts + torch.zeros_like(flat).scatter(-1, first_max, flat.gather(-1, first_max))
    return parts


def position_embeddings(parts: Tensor, form: AffineForm) -> Tensor:
    """``g(i) = M y(i) + c / P`` for one image's parts [C, P] -> [D, P]; their sum is ``e``."""
    return form.matrix @ parts + form.offset[:, None] / parts.shape[-1]


def pair_contributions(query_terms: Tensor, neighbour_terms: Tensor) -> Tensor:
    """``c_ij = <g_q(i), g_n(j)> / (|e_q| |e_n|)`` [P_q, P_n] from the terms [D, P_q] and
    [D, P_n]; their sum is the cosine similarity of ``e_q = sum_i g_q(i)`` and ``e_n``."""
    norm_q = query_terms.sum(dim=1).norm()
    norm_n = neighbour_terms.sum(dim=1).norm()
    return query_terms.T @ neighbour_terms / (norm_q * norm_n)


def heatmaps(
    contributions: Tensor, query_shape: tuple[int, int], neighbour_shape: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """The query's map ``h_q(i) = sum_j c_ij`` [h_q, w_q] and the neighbour's ``h_n(j) = sum_i
    c_ij`` [h_n, w_n]; positions are row-major as in ``maps.flatten(2)``."""
    return contributions.sum(dim=1).reshape(query_shape), contributions.sum(dim=0).reshape(neighbour_shape)


def mean_over_models(contributions: list[Tensor]) -> Tensor:
    """The concatenated ensemble: ``n([n(e_1), ..., n(e_F)])`` has cosine ``(1/F) sum_f cos_f``,
    so its contributions are the mean of the models' (all models see the same maps' shapes)."""
    return torch.stack(contributions).mean(dim=0)
