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

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from dmlbench.config.defaults import setting
from dmlbench.data.folds import FoldData, evaluation_roles
from dmlbench.errors import ExperimentError
from dmlbench.evaluation.embeddings import compute_head_embeddings
from dmlbench.evaluation.ensemble import concatenate_normalized
from dmlbench.evaluation.retrieval import retrieval_metrics
from dmlbench.evaluation.retrieval_settings import RetrievalSettings
from dmlbench.records.store import RecordStore
from dmlbench.records.summary import mean_and_sem
from dmlbench.training import distributed
from dmlbench.training.plugin_set import PluginSet
from dmlbench.vocabulary import TRAINED, UNTRAINED_STATUSES, UNTRAINED_TRUNK

#: Embeddings [N, D] and labels [N] of one sample set.
Embedded = tuple[Tensor, Tensor]


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
            num_workers=int(
                setting(settings, "eval_dataloader_num_workers")
                if setting(settings, "eval_dataloader_num_workers") is not None
                else setting(settings, "dataloader_num_workers")
            ),
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


class TestEnvironment(Protocol):
    """What the test reads of an experiment (:class:`dmlbench.runner.Experiment` is one): its
    folds, how to build or load a fold's models and the eval-transformed samples, the device,
    the evaluation settings, the flat config (``training_plugins``) and the record store."""

    @property
    def settings(self) -> dict[str, Any]: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def evaluation(self) -> EvaluationSettings: ...
    @property
    def folds(self) -> list[FoldData]: ...
    @property
    def store(self) -> RecordStore: ...
    def build_models(self, fold: FoldData) -> dict[str, nn.Module]: ...
    def load_best_models(self, fold: FoldData) -> tuple[dict[str, nn.Module], dict[str, Any]]: ...
    def plugin_context(self, fold: FoldData, models: dict[str, nn.Module]) -> dict[str, Any]: ...
    def subset_of(self, indices: np.ndarray, trunk: nn.Module) -> Any: ...


@dataclass
class TestOutcome:
    """What :func:`test` returns: ``summary`` ``{split: {status: {"separated": {mean, sem,
    per_fold}, "concatenated": metrics}}}`` and ``trained_embeddings`` ``{(split, scheme):
    (embeddings, labels)}`` of the trained models on each split, a query-vs-gallery split as its
    queries then its gallery (:func:`as_one_set`); the report's retrieval examples reuse them
    instead of embedding the split again."""

    summary: dict[str, Any]
    trained_embeddings: dict[tuple[str, str], Embedded] = field(default_factory=dict)


def embed(
    settings: EvaluationSettings,
    device: torch.device,
    trunk: nn.Module,
    embedder: nn.Module | None,
    dataset: Any,
    desc: str,
    collective: bool = True,
) -> tuple[Tensor, Tensor]:
    """Embeddings [N, D] and labels [N] of ``dataset`` (``embedder=None``: trunk features).
    Under torchrun every rank embeds its shard and all get the whole (a collective call);
    ``collective=False`` embeds everything in this process alone (work done on rank 0 only)."""
    return embed_heads(settings, device, trunk, {"out": embedder}, dataset, desc, collective)["out"]


def embed_heads(
    settings: EvaluationSettings,
    device: torch.device,
    trunk: nn.Module,
    heads: dict[str, nn.Module | None],
    dataset: Any,
    desc: str,
    collective: bool = True,
) -> dict[str, tuple[Tensor, Tensor]]:
    """:func:`embed` for several heads on one trunk pass: ``{name: (embeddings, labels)}``."""
    part = distributed.shard(dataset) if collective else dataset
    outputs, labels = compute_head_embeddings(
        trunk,
        heads,
        part,
        batch_size=settings.batch_size,
        device=device,
        num_workers=settings.num_workers,
        desc=desc,
    )
    if collective:  # torchrun: every rank's shard
        outputs = {name: distributed.gather_rows(out) for name, out in outputs.items()}
        labels = distributed.gather_rows(labels)
    return {name: (out, labels) for name, out in outputs.items()}


def score(
    settings: EvaluationSettings,
    device: torch.device,
    embeddings: Tensor,
    labels: Tensor,
    similarity: Any = None,
    **query: Any,
) -> dict[str, float]:
    """MLRC metrics (and Recall@K); with ``eval_binarize`` also the same metrics of the binary
    codes 1[x > 0] ranked by Hamming distance, prefixed ``binary_``. ``query`` holds
    ``query_embeddings``/``query_labels`` for query-vs-gallery scoring."""
    return distributed.main_result(lambda: _score(settings, device, embeddings, labels, similarity, query))


def _score(
    settings: EvaluationSettings,
    device: torch.device,
    embeddings: Tensor,
    labels: Tensor,
    similarity: Any,
    query: dict[str, Any],
) -> dict[str, float]:
    options = settings.metric_options()
    metrics = retrieval_metrics(
        embeddings, labels, RetrievalSettings(device=device, similarity=similarity, **options), **query
    )
    if settings.binarize:
        binary_settings = RetrievalSettings(device=device, binarize=True, **options)
        binary = retrieval_metrics(embeddings, labels, binary_settings, **query)
        metrics.update({f"binary_{name}": value for name, value in binary.items()})
    return metrics


def evaluation_sets(fold: FoldData, split: str) -> dict[str, np.ndarray]:
    """The sample sets a split is scored on: ``{"self": idx}`` (compared to itself), or
    ``{"query": idx, "gallery": idx}`` for a query-vs-gallery protocol (In-Shop), which
    ``test`` means when the split manager made query and gallery splits instead of a test split."""
    roles = evaluation_roles(fold.indices, split)
    if roles is not None:
        return roles
    raise ExperimentError(
        f"split {split!r} does not exist in {fold.scheme}; splits: {', '.join(fold.indices)}"
    )


def score_sets(
    settings: EvaluationSettings,
    device: torch.device,
    embedded: dict[str, Embedded],
    similarity: Any = None,
) -> dict[str, float]:
    """Score ``{"self": (E, L)}`` against itself, or ``{"query": ..., "gallery": ...}``."""
    if "self" in embedded:
        return score(settings, device, *embedded["self"], similarity=similarity)
    (query, query_labels), (gallery, gallery_labels) = embedded["query"], embedded["gallery"]
    return score(
        settings,
        device,
        gallery,
        gallery_labels,
        query_embeddings=query,
        query_labels=query_labels,
        similarity=similarity,
    )


def fold_models(env: TestEnvironment, fold: FoldData, status: str) -> tuple[dict[str, nn.Module], int, Any]:
    """The fold's models for ``status``, their epoch and the plugin similarity (trained only)."""
    if status != TRAINED:
        return env.build_models(fold), 0, None
    models, saved = env.load_best_models(fold)
    plugins = PluginSet.from_config(
        env.settings.get("training_plugins"), env.plugin_context(fold, models), env.device
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
    env: TestEnvironment, fold: FoldData, split: str, group: list[str]
) -> tuple[dict[str, dict[str, Embedded]], int, Any]:
    """The fold's embeddings of ``split`` for each status of ``group`` (one trunk pass per set):
    ``{status: {role: (embeddings, labels)}}``, the models' epoch and the plugin similarity."""
    models, epoch, similarity = fold_models(env, fold, group[0])
    heads = {status: None if status == UNTRAINED_TRUNK else models["embedder"] for status in group}
    shown = "untrained" if len(group) > 1 else group[0]
    embedded: dict[str, dict[str, Embedded]] = {status: {} for status in group}
    for role, indices in evaluation_sets(fold, split).items():
        outputs = embed_heads(
            env.evaluation,
            env.device,
            models["trunk"],
            heads,
            env.subset_of(indices, models["trunk"]),
            f"{fold.scheme} {split}{'' if role == 'self' else ' ' + role} {shown}",
        )
        for status, pair in outputs.items():
            embedded[status][role] = pair
    return embedded, epoch, similarity


def as_one_set(embedded: dict[str, Embedded]) -> Embedded:
    """A split's embeddings as one set: the self-compared set, or the queries then the gallery."""
    if "self" in embedded:
        return embedded["self"]
    (query, query_labels), (gallery, gallery_labels) = embedded["query"], embedded["gallery"]
    return torch.cat([query, gallery]), torch.cat([query_labels, gallery_labels])


def trained_embeddings(env: TestEnvironment, fold: FoldData, indices: np.ndarray, desc: str) -> Embedded:
    """The embeddings and labels of samples ``indices`` by the fold's ``best.pt``, computed in
    this process alone (work done on rank 0 only)."""
    models, _, _ = fold_models(env, fold, TRAINED)
    subset = env.subset_of(indices, models["trunk"])
    return embed(
        env.evaluation, env.device, models["trunk"], models["embedder"], subset, desc, collective=False
    )


def test(env: TestEnvironment, splits: list[str], statuses: list[str], ensemble: bool) -> TestOutcome:
    """Test each fold model (and the concatenated ensemble) on ``splits`` for each status; every
    score is recorded in ``env.store``. -> the separated/concatenated summary and the trained
    embeddings of the self-compared splits."""
    store, outcome = env.store, TestOutcome({})
    results: dict[str, dict[str, Any]] = {}
    for split in splits:
        per_fold: dict[str, dict[str, dict[str, float]]] = {status: {} for status in statuses}
        fold_sets: dict[str, list[dict[str, Embedded]]] = {status: [] for status in statuses}
        for group in status_groups(statuses):
            for fold in env.folds:
                embedded, epoch, similarity = embed_fold(env, fold, split, group)
                for status in group:
                    scores = score_sets(env.evaluation, env.device, embedded[status], similarity)
                    per_fold[status][fold.scheme] = scores
                    store.add_accuracies(fold.scheme, split, status, "fold", epoch, scores)
                    fold_sets[status].append(embedded[status])
                    if status == TRAINED:
                        outcome.trained_embeddings[(split, fold.scheme)] = as_one_set(embedded[status])
        results[split] = {}
        for status in statuses:
            entry: dict[str, Any] = {"folds": per_fold[status]}
            sets = fold_sets.pop(status)
            if ensemble and len(sets) > 1:
                concatenated = {
                    role: (concatenate_normalized([s[role][0] for s in sets]), sets[0][role][1])
                    for role in sets[0]
                }
                entry["concatenated"] = score_sets(env.evaluation, env.device, concatenated)
                store.add_accuracies("ensemble", split, status, "concatenated", -1, entry["concatenated"])
            results[split][status] = entry
    outcome.summary = summarize_test_results(results)
    for split, by_status in outcome.summary.items():
        for status, entry in by_status.items():
            store.add_accuracies("ensemble", split, status, "separated", -1, entry["separated"]["mean"])
            store.add_accuracies("ensemble", split, status, "separated_sem", -1, entry["separated"]["sem"])
    return outcome


def summarize_test_results(results: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """``{split: {status: {"folds": {scheme: metrics}, "concatenated": metrics}}}`` ->
    the same tree with ``separated: {mean, sem, per_fold}`` in place of ``folds``."""
    summary: dict[str, Any] = {}
    for split, by_status in results.items():
        summary[split] = {}
        for status, result in by_status.items():
            folds = result.get("folds", {})
            metric_names = list(next(iter(folds.values()))) if folds else []
            mean, sem = {}, {}
            for metric in metric_names:
                mean[metric], sem[metric] = mean_and_sem([fold[metric] for fold in folds.values()])
            entry: dict[str, Any] = {"separated": {"mean": mean, "sem": sem, "per_fold": folds}}
            if "concatenated" in result:
                entry["concatenated"] = result["concatenated"]
            summary[split][status] = entry
    return summary
