"""AVSL as a training plugin: the collector's parameters are trained with their own optimizer,
the final and per-level Proxy-Anchor losses are the plugin's loss terms, and retrieval at
validation and test ranks by the final distance D.

Config (the paper's CUB200 settings; docs/methods/avsl.md)::

    models:
      trunk: {MultiLevelTrunk: {name: resnet50, layers: [layer2, layer3, layer4]}}
      embedder: {AVSLEmbedder: {dim: 512}}
    loss_funcs: {}                     # every term comes from the plugin
    training_plugins:
      AVSL: {num_levels: 3, level_weights: [0.5, 1.0, 0.5]}
    optimizers:
      collector_optimizer: {AdamW: {lr: 0.00011, weight_decay: 0.0001}}

Each step (``loss_terms``): the batch's link matrices from the activation maps update the EMA
links (first batch copied), then D and d^l of every (sample, proxy) pair give the terms
``avsl_final = final_weight * PA(D)`` and ``avsl_level<l> = w_l * PA(d^l)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor, nn

from dmlbench.errors import ConfigError
from dmlbench.plugins.avsl import functional as AF
from dmlbench.plugins.avsl.modules import AVSLCollector, AVSLEmbedder, split_output
from dmlbench.registry import register
from dmlbench.training.plugins import LossInputs, StepContext, TrainingPlugin


class AVSLSimilarity:
    """Test-time score ``-D(x, y)`` of per-sample rows ``[e^1..e^L, c^1..c^L]`` (the embedder's
    output), computed in query sub-blocks of at most ``max_elements`` numbers per [q, r, dim]
    temporary (knn.Similarity contract: blocks in, [q, r] scores out)."""

    def __init__(
        self,
        links: list[Tensor],
        a: list[Tensor],
        b: list[Tensor],
        num_levels: int,
        dim: int,
        gamma: float,
        p: float,
        max_elements: int,
    ) -> None:
        self.links, self.a, self.b = links, a, b
        self.num_levels, self.dim, self.gamma, self.p, self.max_elements = (
            num_levels,
            dim,
            gamma,
            p,
            max_elements,
        )

    def tensors_on(self, device: torch.device) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        links, a, b = ([t.to(device, torch.float32) for t in ts] for ts in (self.links, self.a, self.b))
        return links, a, b

    def __call__(self, query_block: Tensor, reference_block: Tensor) -> Tensor:
        eq, cq = split_output(query_block.float(), self.num_levels, self.dim)
        er, cr = split_output(reference_block.float(), self.num_levels, self.dim)
        links, a, b = self.tensors_on(query_block.device)
        return -AF.avsl_final_distance_chunked(
            eq, er, cq, cr, links, a, b, self.gamma, self.p, self.max_elements
        )

    def paired(self, query_rows: Tensor, reference_rows: Tensor) -> Tensor:
        """``-D`` of row i against row i (for re-ranking), [m]."""
        scores = [
            self(query_rows[i : i + 1], reference_rows[i : i + 1])[0, 0] for i in range(len(query_rows))
        ]
        return torch.stack(scores) if scores else query_rows.new_zeros(0)


@register("training_plugin", "AVSL")
class AVSL(TrainingPlugin):
    """Attributable visual similarity learning (Zhang et al., CVPR 2022).

    Args:
        num_classes: training classes (filled in by the runner); one proxy each, per level.
        embedding_size: the embedder's width, 2 * num_levels * dim (filled in by the runner).
        num_levels: L, the trunk's levels.
        level_weights: w_l of the per-level losses PA(d^l) (the paper: CUB [0.5, 1, 0.5],
            Cars and SOP [1, 4, 4]); ``final_weight`` weighs PA(D).
        topk: k of the top-k link columns (128); ``gamma``: the gate's temperature (10);
        momentum: EMA momentum of the links (0.5); ``p``: the exponent of the deltas (2).
        alpha, pos_margin, neg_margin: the per-level Proxy-Anchor (16, 1.8, 2.2);
        final_alpha, final_pos_margin, final_neg_margin: the final one (default: the same).
        batch_proxies_only: use only the proxies of the batch's classes as columns (default:
            when num_classes > 1000, as the official code does for SOP).
        eval_max_elements: memory bound of the test-time D computation (numbers per temporary).
    """

    def __init__(
        self,
        num_classes: int,
        embedding_size: int | None = None,
        num_levels: int = 3,
        level_weights: list[float] | None = None,
        final_weight: float = 1.0,
        topk: int = 128,
        gamma: float = 10.0,
        momentum: float = 0.5,
        p: float = 2.0,
        alpha: float = 16.0,
        pos_margin: float = 1.8,
        neg_margin: float = 2.2,
        final_alpha: float | None = None,
        final_pos_margin: float | None = None,
        final_neg_margin: float | None = None,
        batch_proxies_only: bool | None = None,
        eval_max_elements: int = 2**24,
    ) -> None:
        where = "training_plugins.AVSL"
        if int(num_levels) < 1:
            raise ConfigError(f"{where}.num_levels: expected >= 1, got {num_levels!r}")
        self.num_levels = int(num_levels)
        if not embedding_size or int(embedding_size) % (2 * self.num_levels):
            raise ConfigError(
                f"{where}: the embedder's width {embedding_size!r} is not 2 x num_levels x dim; "
                "use the AVSLEmbedder with a multi-level trunk of num_levels levels"
            )
        self.dim = int(embedding_size) // (2 * self.num_levels)
        weights = [1.0] * self.num_levels if level_weights is None else [float(w) for w in level_weights]
        if len(weights) != self.num_levels:
            raise ConfigError(
                f"{where}.level_weights: expected {self.num_levels} weights, got {level_weights!r}"
            )
        if int(topk) < 1 or not 0 <= float(momentum) < 1:
            raise ConfigError(f"{where}: need topk >= 1 and 0 <= momentum < 1, got {topk!r} and {momentum!r}")
        self.level_weights, self.final_weight = weights, float(final_weight)
        self.topk, self.gamma, self.p = int(topk), float(gamma), float(p)
        self.level_pa = (float(alpha), float(pos_margin), float(neg_margin))
        self.final_pa = tuple(
            float(v if v is not None else d)
            for v, d in zip((final_alpha, final_pos_margin, final_neg_margin), self.level_pa)
        )
        self.batch_proxies_only = (
            int(num_classes) > 1000 if batch_proxies_only is None else bool(batch_proxies_only)
        )
        self.eval_max_elements = int(eval_max_elements)
        self.collector = AVSLCollector(self.num_levels, self.dim, int(num_classes), float(momentum))

    # ---------------------------------------------------------------- extension points
    def modules(self) -> dict[str, nn.Module]:
        return {"collector": self.collector}

    def setup(self, context: StepContext) -> None:
        embedder = context.models["embedder"]
        if not isinstance(embedder, AVSLEmbedder) or embedder.num_levels != self.num_levels:
            raise ConfigError(
                "training_plugins.AVSL needs models.embedder AVSLEmbedder with num_levels = "
                f"{self.num_levels} levels (got {type(embedder).__name__})"
            )

    def loss_terms(self, inputs: LossInputs, context: StepContext) -> dict[str, Tensor]:
        embedder = cast(AVSLEmbedder, context.models["embedder"])  # checked in setup
        assert inputs.features is not None, "AVSL's trunk returns its feature levels"
        features = list(inputs.features)
        batch = features[0].shape[0]
        embeddings, certainties = split_output(inputs.embeddings[:batch], self.num_levels, self.dim)
        labels = inputs.labels[:batch]
        maps = embedder.activation_maps(features)
        self.collector.update_links([AF.link_matrix(low, high) for low, high in zip(maps[:-1], maps[1:])])
        return self.terms(embeddings, certainties, labels)

    def terms(self, embeddings: list[Tensor], certainties: list[Tensor], labels: Tensor) -> dict[str, Tensor]:
        """The weighted loss terms of a batch against the proxies (links as they are now)."""
        collector = self.collector
        columns = (
            torch.unique(labels)
            if self.batch_proxies_only
            else torch.arange(collector.proxies[0].shape[0], device=labels.device)
        )
        proxies = [proxy[columns] for proxy in collector.proxies]
        proxy_certainties = [torch.ones_like(proxy) * c.mean() for proxy, c in zip(proxies, certainties)]
        final, levels = AF.avsl_distances(
            embeddings,
            proxies,
            certainties,
            proxy_certainties,
            collector.normalized_links(self.topk),
            list(collector.a),
            list(collector.b),
            self.gamma,
            self.p,
        )
        pa = AF.proxy_anchor_distance_loss
        terms = {"avsl_final": self.final_weight * pa(final, labels, columns, *self.final_pa)}
        for level, (weight, distances) in enumerate(zip(self.level_weights, levels), start=1):
            terms[f"avsl_level{level}"] = weight * pa(distances, labels, columns, *self.level_pa)
        return terms

    def eval_similarity(self) -> Callable[[Any, Any], Tensor]:
        collector = self.collector
        return AVSLSimilarity(
            collector.normalized_links(self.topk),
            [t.detach() for t in collector.a],
            [t.detach() for t in collector.b],
            self.num_levels,
            self.dim,
            self.gamma,
            self.p,
            self.eval_max_elements,
        )
