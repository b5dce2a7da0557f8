"""The MLRC test protocol (docs/protocol.md): embed each split with each fold's model, score it,
and score the fold models together.

For every split and trained status (``untrained_trunk``: trunk features of the initial trunk;
``untrained_trunk_and_embedder``: the initial models; ``trained``: the fold's ``best.pt``):

1. embed the split's samples with the fold's models (the evaluation transform; the two untrained
   statuses come from one pass of the same initial trunk);
2. score them: MAP@R, R-Precision, P@1 (and Recall@K) with the fold's plugin similarity when
   one plugin defines it (:meth:`dmlbench.training.plugin_set.PluginSet.similarity`);
3. *separated*: mean and SEM of the fold scores; *concatenated*: the L2-normalised embeddings of
   all fold models concatenated per sample and scored once (dot product).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor, nn

from dmlbench.config.defaults import setting
from dmlbench.errors import ExperimentError
from dmlbench.evaluation.embeddings import compute_head_embeddings
from dmlbench.evaluation.ensemble import concatenate_normalized
from dmlbench.evaluation.retrieval import retrieval_metrics
from dmlbench.evaluation.retrieval_settings import RetrievalSettings
from dmlbench.records.run_report import summarize_test_results
from dmlbench.training import distributed
from dmlbench.training.plugin_set import PluginSet
from dmlbench.vocabulary import TRAINED, UNTRAINED_STATUSES, UNTRAINED_TRUNK

if TYPE_CHECKING:
    from dmlbench.runner import Experiment, FoldData


@dataclass(frozen=True)
class EvaluationSettings:
    """How embeddings are computed and scored (config_eval; defaults in its default.yaml)."""

    batch_size: int
    num_workers: int
    normalize: bool
    recall_at: tuple[int, ...]
    chunk_size: int | None
    binarize: bool
    check_untrained_accuracy: bool

    @classmethod
    def from_config(cls, settings: dict[str, Any]) -> EvaluationSettings:
        chunk = setting(settings, "eval_chunk_size")
        return cls(
            batch_size=int(setting(settings, "eval_batch_size")),
            num_workers=int(setting(settings, "dataloader_num_workers")),
            normalize=bool(setting(settings, "eval_normalize_embeddings")),
            recall_at=tuple(int(k) for k in setting(settings, "eval_recall_at") or ()),
            chunk_size=int(chunk) if chunk else None,
            binarize=bool(setting(settings, "eval_binarize")),
            check_untrained_accuracy=bool(setting(settings, "check_untrained_accuracy")),
        )

    def metric_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"normalize": self.normalize}
        if self.recall_at:
            options["recall_at"] = self.recall_at
        if self.chunk_size:
            options["chunk_size"] = self.chunk_size
        return options

    def statuses(self) -> list[str]:
        return (list(UNTRAINED_STATUSES) if self.check_untrained_accuracy else []) + [TRAINED]


def embed(
    experiment: Experiment,
    trunk: nn.Module,
    embedder: nn.Module | None,
    dataset: Any,
    desc: str,
    collective: bool = True,
) -> tuple[Tensor, Tensor]:
    """Embeddings [N, D] and labels [N] of ``dataset`` (``embedder=None``: trunk features).
    Under torchrun every rank embeds its shard and all get the whole (a collective call);
    ``collective=False`` embeds everything in this process alone (work done on rank 0 only)."""
    return embed_heads(experiment, trunk, {"out": embedder}, dataset, desc, collective)["out"]


def embed_heads(
    experiment: Experiment,
    trunk: nn.Module,
    heads: dict[str, nn.Module | None],
    dataset: Any,
    desc: str,
    collective: bool = True,
) -> dict[str, tuple[Tensor, Tensor]]:
    """:func:`embed` for several heads on one trunk pass: ``{name: (embeddings, labels)}``."""
    settings = experiment.evaluation
    part = distributed.shard(dataset) if collective else dataset
    outputs, labels = compute_head_embeddings(
        trunk,
        heads,
        part,
        batch_size=settings.batch_size,
        device=experiment.device,
        num_workers=settings.num_workers,
        desc=desc,
    )
    if collective:  # torchrun: every rank's shard
        outputs = {name: distributed.gather_rows(out) for name, out in outputs.items()}
        labels = distributed.gather_rows(labels)
    return {name: (out, labels) for name, out in outputs.items()}


def score(
    experiment: Experiment, embeddings: Tensor, labels: Tensor, similarity: Any = None, **query: Any
) -> dict[str, float]:
    """MLRC metrics (and Recall@K); with ``eval_binarize`` also the same metrics of the binary
    codes 1[x > 0] ranked by Hamming distance, prefixed ``binary_``. ``query`` holds
    ``query_embeddings``/``query_labels`` for query-vs-gallery scoring."""
    return distributed.main_result(lambda: _score(experiment, embeddings, labels, similarity, query))


def _score(
    experiment: Experiment, embeddings: Tensor, labels: Tensor, similarity: Any, query: dict[str, Any]
) -> dict[str, float]:
    options = experiment.evaluation.metric_options()
    settings = RetrievalSettings(device=experiment.device, similarity=similarity, **options)
    metrics = retrieval_metrics(embeddings, labels, settings, **query)
    if experiment.evaluation.binarize:
        binary_settings = RetrievalSettings(device=experiment.device, binarize=True, **options)
        binary = retrieval_metrics(embeddings, labels, binary_settings, **query)
        metrics.update({f"binary_{name}": value for name, value in binary.items()})
    return metrics


def evaluation_sets(fold: FoldData, split: str) -> dict[str, np.ndarray]:
    """The sample sets a split is scored on: ``{"self": idx}`` (compared to itself), or
    ``{"query": idx, "gallery": idx}`` for a query-vs-gallery protocol (In-Shop), which
    ``test`` means when the split manager made query and gallery splits instead of a test split."""
    if split in fold.indices:
        return {"self": fold.indices[split]}
    if split == "test" and {"query", "gallery"} <= set(fold.indices):
        return {"query": fold.indices["query"], "gallery": fold.indices["gallery"]}
    raise ExperimentError(
        f"split {split!r} does not exist in {fold.scheme}; splits: {', '.join(fold.indices)}"
    )


def score_sets(
    experiment: Experiment, embedded: dict[str, tuple[Tensor, Tensor]], similarity: Any = None
) -> dict[str, float]:
    """Score ``{"self": (E, L)}`` against itself, or ``{"query": ..., "gallery": ...}``."""
    if "self" in embedded:
        return score(experiment, *embedded["self"], similarity=similarity)
    (query, query_labels), (gallery, gallery_labels) = embedded["query"], embedded["gallery"]
    return score(
        experiment,
        gallery,
        gallery_labels,
        query_embeddings=query,
        query_labels=query_labels,
        similarity=similarity,
    )


def fold_models(experiment: Experiment, fold: FoldData, status: str) -> tuple[dict[str, nn.Module], int, Any]:
    """The fold's models for ``status``, their epoch and the plugin similarity (trained only)."""
    if status != TRAINED:
        return experiment.build_models(fold), 0, None
    models, saved = experiment.load_best_models(fold)
    plugins = PluginSet.from_config(
        experiment.settings.get("training_plugins"),
        experiment.plugin_context(fold, models),
        experiment.device,
    )
    plugins.load_checkpoint(saved)
    return models, int(saved["epoch"]), plugins.similarity()


def status_groups(statuses: list[str]) -> list[list[str]]:
    """Statuses that share one model build and one trunk pass: the untrained ones (trunk
    features and the embedder's output of the same initial trunk), then each other alone."""
    untrained = [status for status in statuses if status in UNTRAINED_STATUSES]
    return ([untrained] if untrained else []) + [
        [status] for status in statuses if status not in UNTRAINED_STATUSES
    ]


def embed_fold(
    experiment: Experiment, fold: FoldData, split: str, group: list[str]
) -> tuple[dict[str, dict[str, tuple[Tensor, Tensor]]], int, Any]:
    """The fold's embeddings of ``split`` for each status of ``group`` (one trunk pass per set):
    ``{status: {role: (embeddings, labels)}}``, the models' epoch and the plugin similarity."""
    models, epoch, similarity = fold_models(experiment, fold, group[0])
    heads = {status: None if status == UNTRAINED_TRUNK else models["embedder"] for status in group}
    shown = "untrained" if len(group) > 1 else group[0]
    embedded: dict[str, dict[str, tuple[Tensor, Tensor]]] = {status: {} for status in group}
    for role, indices in evaluation_sets(fold, split).items():
        outputs = embed_heads(
            experiment,
            models["trunk"],
            heads,
            experiment.subset_of(indices, models["trunk"]),
            f"{fold.scheme} {split}{'' if role == 'self' else ' ' + role} {shown}",
        )
        for status, pair in outputs.items():
            embedded[status][role] = pair
    return embedded, epoch, similarity


def test(experiment: Experiment, splits: list[str], statuses: list[str], ensemble: bool) -> dict[str, Any]:
    """Test each fold model (and the concatenated ensemble) on ``splits`` for each status; every
    score is recorded in the experiment's store. Returns the separated/concatenated summary."""
    store = experiment.store
    results: dict[str, dict[str, Any]] = {}
    for split in splits:
        per_fold: dict[str, dict[str, dict[str, float]]] = {status: {} for status in statuses}
        fold_sets: dict[str, list[dict[str, tuple[Tensor, Tensor]]]] = {status: [] for status in statuses}
        for group in status_groups(statuses):
            for fold in experiment.folds:
                embedded, epoch, similarity = embed_fold(experiment, fold, split, group)
                for status in group:
                    per_fold[status][fold.scheme] = score_sets(experiment, embedded[status], similarity)
                    store.add_accuracies(
                        fold.scheme, split, status, "fold", epoch, per_fold[status][fold.scheme]
                    )
                    fold_sets[status].append(embedded[status])
                    if status == TRAINED and "self" in embedded[status]:
                        experiment.trained_embeddings[(split, fold.scheme)] = embedded[status]["self"]
        results[split] = {}
        for status in statuses:
            entry: dict[str, Any] = {"folds": per_fold[status]}
            sets = fold_sets.pop(status)
            if ensemble and len(sets) > 1:
                concatenated = {
                    role: (concatenate_normalized([s[role][0] for s in sets]), sets[0][role][1])
                    for role in sets[0]
                }
                entry["concatenated"] = score_sets(experiment, concatenated)
                store.add_accuracies("ensemble", split, status, "concatenated", -1, entry["concatenated"])
            results[split][status] = entry
    summary = summarize_test_results(results)
    for split, by_status in summary.items():
        for status, entry in by_status.items():
            store.add_accuracies("ensemble", split, status, "separated", -1, entry["separated"]["mean"])
            store.add_accuracies("ensemble", split, status, "separated_sem", -1, entry["separated"]["sem"])
    return summary
