"""Is a validation split big enough to select a model on?

Retrieval metrics on a split are computed per query over the other samples (query = reference,
self excluded; a query whose class has no other sample is skipped). With a single class every
neighbour is relevant, so P@1 = R-Precision = MAP@R = 1 for any model; with one sample per class
there is no query at all. Model selection on such a split keeps the untrained model of epoch 0
as "best". :func:`check_validation_splits` refuses such splits before anything is written, and
warns when a split is merely small (its metrics are noisy enough to make selection arbitrary).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dmlbench.errors import SplitError

#: below these, a validation split's metrics mean little: a warning
MIN_CLASSES = 10
MIN_QUERIES = 50


def validation_size(labels: np.ndarray) -> tuple[int, int, int]:
    """(classes, samples, queries) of a split's labels; queries = samples of classes with >= 2 samples."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    return len(counts), int(counts.sum()), int(counts[counts >= 2].sum())


def _fixes(split_manager: Any) -> str:
    name = (
        next(iter(split_manager))
        if isinstance(split_manager, dict) and split_manager
        else "the split manager"
    )
    return (
        f"give validation more classes: fewer folds ({name}: num_training_partitions 2, each fold validates on "
        "1/P of the training classes), a smaller test_size (more training classes), a data set with more "
        "classes, or train without validation (PredefinedSplitManager on a data set with its own train/test "
        "split keeps the last epoch's model)"
    )


def check_validation_splits(
    splits: dict[str, dict[str, np.ndarray]], labels: Any, split_manager: Any = None
) -> None:
    """Raise :class:`SplitError` if a scheme's ``val`` split cannot select a model (fewer than 2
    classes, or no class with 2 samples); warn if it has fewer than ``MIN_CLASSES`` classes or
    ``MIN_QUERIES`` queries. ``labels`` are the data set's (1-D, or samples x levels: column 0)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[:, 0]
    small: dict[str, tuple[int, int]] = {}
    for scheme, indices in splits.items():
        if "val" not in indices:
            continue
        classes, samples, queries = validation_size(labels[indices["val"]])
        if classes < 2 or queries == 0:
            what = "1 class" if classes < 2 else f"{classes} classes of one sample each"
            raise SplitError(
                f"split_manager: the validation split of {scheme} has {what} ({samples} samples): every retrieval "
                f"metric on it is trivial (P@1 = MAP@R = 100 for any model, or no query at all), so the untrained "
                f"model would be kept as best; {_fixes(split_manager)}"
            )
        if classes < MIN_CLASSES or queries < MIN_QUERIES:
            small[scheme] = (classes, queries)
    if small:  # one warning for all folds
        class_counts = sorted({c for c, _ in small.values()})
        query_counts = sorted({q for _, q in small.values()})
        if len(small) == 1:
            (scheme,) = small
            which = f"the validation split of {scheme} has"
        else:
            which = f"the validation splits of {len(small)} folds ({', '.join(small)}) have"
        warnings.warn(
            f"split_manager: {which} only {_span(class_counts)} classes and {_span(query_counts)} queries; "
            f"model selection on it is noisy; to {_fixes(split_manager)}",
            stacklevel=2,
        )


def _span(values: list[int]) -> str:
    """``[3]`` -> "3", ``[3, 5, 4]`` sorted -> "3-5"."""
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"
