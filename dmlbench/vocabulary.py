"""The benchmark's words for results, in one leaf module (it imports nothing of dmlbench):
metric keys and their column names, trained statuses, result modes, and their report order.

Training (validation lines), evaluation (the test protocol) and records (report tables, merged
results) all read them from here."""

from __future__ import annotations

from collections.abc import Iterable

#: Metric keys in report order, with their short column names (docs/protocol.md).
MAIN_METRICS = {
    "precision_at_1": "P@1",
    "r_precision": "R-Precision",
    "mean_average_precision_at_r": "MAP@R",
}

#: Trained statuses: the initial trunk's features, the initial models' embeddings, the fold's
#: best checkpoint.
UNTRAINED_TRUNK = "untrained_trunk"
UNTRAINED_TRUNK_AND_EMBEDDER = "untrained_trunk_and_embedder"
TRAINED = "trained"
#: Statuses scored with the initial models (one model build and one trunk pass in the test).
UNTRAINED_STATUSES = (UNTRAINED_TRUNK, UNTRAINED_TRUNK_AND_EMBEDDER)
#: Every trained status, in report order.
TRAINED_STATUSES = (*UNTRAINED_STATUSES, TRAINED)

#: Result modes of a test: mean ± SEM over the fold models, and their concatenated embeddings.
RESULT_MODES = ("separated", "concatenated")


def ordered_statuses(statuses: Iterable[str]) -> list[str]:
    """``statuses`` in report order: the known ones as in :data:`TRAINED_STATUSES`, then any
    other in its given order."""
    given = list(statuses)
    return [s for s in TRAINED_STATUSES if s in given] + [s for s in given if s not in TRAINED_STATUSES]
