"""A query and its neighbours through one or several trained models: the per-pair decomposition
of :mod:`dmlbench.attribution.decompose`, computed in float64 on copies of the models."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from dmlbench.attribution.decompose import (
    EXACT_POOLINGS,
    heatmaps,
    mean_over_models,
    pair_contributions,
    position_embeddings,
    position_parts,
)
from dmlbench.attribution.forms import SpatialTrunk, affine_form, spatial_trunk
from dmlbench.errors import ConfigError

#: Largest relative difference tolerated between the trunk's output and its pooled maps (float64).
TOLERANCE = 1e-6


@dataclass(frozen=True)
class PairExplanation:
    """One query-neighbour pair: ``contributions`` [P_q, P_n] (sum: ``contribution_sum``) and
    its two heatmaps [h_q, w_q] and [h_n, w_n]; ``exact`` as in the module docstrings."""

    contributions: Tensor
    query_map: Tensor
    neighbour_map: Tensor
    exact: bool

    @property
    def contribution_sum(self) -> float:
        return float(self.contributions.sum())


@dataclass(frozen=True)
class ImageTerms:
    """One image through one model: its position terms ``g`` [D, P] and map shape (h, w)."""

    terms: Tensor
    shape: tuple[int, int]
    exact: bool


def float64_copy(module: nn.Module) -> nn.Module:
    """An evaluation-mode float64 copy of ``module`` (the trained one is left as it is)."""
    return copy.deepcopy(module).double().eval()


def image_terms(spatial: SpatialTrunk, trunk: nn.Module, embedder: nn.Module, image: Tensor) -> ImageTerms:
    """``g(i)`` of one image [3, H, W] (float64 models), after checking that the trunk's output is
    the pooling of its maps and the terms add up to the embedder's output direction."""
    batch = image[None].to(dtype=torch.float64, device=next(trunk.parameters()).device)
    with torch.no_grad():
        maps = spatial.features(batch)
        pooled_by_trunk = trunk(batch).flatten(1)[0]
    if maps.ndim != 4:
        raise ConfigError(
            f"cannot explain: {type(trunk).__name__}.forward_features returned shape {tuple(maps.shape)}, "
            "expected [batch, channels, height, width]"
        )
    parts = position_parts(maps, spatial.pooling, spatial.gem_p, spatial.gem_eps)[0]
    pooled = parts.sum(dim=-1)
    if not torch.allclose(
        pooled, pooled_by_trunk, rtol=TOLERANCE, atol=TOLERANCE * float(pooled.abs().max())
    ):
        raise ConfigError(
            f"cannot explain: trunk {type(trunk).__name__}'s output is not the {spatial.pooling} pooling "
            "of its forward_features maps"
        )
    form = affine_form(embedder, pooled)
    terms = position_embeddings(parts, form)
    with torch.no_grad():
        output = embedder(pooled[None])[0]
    cosine = torch.nn.functional.cosine_similarity(terms.sum(dim=1), output, dim=0)
    if not bool(cosine > 1 - TOLERANCE):
        raise ConfigError(
            f"cannot explain: embedder {type(embedder).__name__} is not the affine map its explanation "
            f"assumes (cosine {float(cosine):.6f} between the two)"
        )
    exact = form.exact and spatial.pooling in EXACT_POOLINGS
    return ImageTerms(terms, (int(maps.shape[2]), int(maps.shape[3])), exact)


def explain_pairs(models: list[dict[str, nn.Module]], images: list[Tensor]) -> list[PairExplanation]:
    """The query ``images[0]`` against each of ``images[1:]``, through every model in ``models``
    (several: the concatenated ensemble, whose cosine is the mean of the models')."""
    per_model: list[list[ImageTerms]] = []
    for model in models:
        spatial_source = spatial_trunk(model["trunk"])
        trunk, embedder = float64_copy(model["trunk"]), float64_copy(model["embedder"])
        spatial = SpatialTrunk(
            cast(Callable[[Tensor], Tensor], trunk.forward_features),
            spatial_source.pooling,
            spatial_source.gem_p,
            spatial_source.gem_eps,
        )
        per_model.append([image_terms(spatial, trunk, embedder, image) for image in images])
    explanations = []
    for position in range(1, len(images)):
        contributions = mean_over_models(
            [pair_contributions(terms[0].terms, terms[position].terms) for terms in per_model]
        )
        query_map, neighbour_map = heatmaps(
            contributions, per_model[0][0].shape, per_model[0][position].shape
        )
        exact = all(terms[0].exact and terms[position].exact for terms in per_model)
        explanations.append(PairExplanation(contributions, query_map, neighbour_map, exact))
    return explanations
