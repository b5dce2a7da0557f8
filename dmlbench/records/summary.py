"""Summary statistics of fold results: mean, standard error, Student-t confidence intervals
(scipy.stats)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def mean_and_sem(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean, SEM = s / sqrt(n) with the n-1 sample deviation
    (``scipy.stats.sem``; 0 for a single value)."""
    if len(values) == 0:
        raise ValueError("no values")
    array = np.asarray(values, dtype=np.float64)
    if len(array) == 1:
        return float(array[0]), 0.0
    return float(array.mean()), float(stats.sem(array))


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval mean +- t_{(1+level)/2, n-1} * SEM (``scipy.stats.t.interval``);
    (mean, mean) for a single value or identical values."""
    mean, sem = mean_and_sem(values)
    if len(values) < 2 or sem == 0:
        return mean, mean
    low, high = stats.t.interval(level, len(values) - 1, loc=mean, scale=sem)
    return float(low), float(high)
