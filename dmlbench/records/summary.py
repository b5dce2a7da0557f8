"""Summary statistics of fold results: mean, standard error, Student-t confidence intervals."""

from __future__ import annotations

import math
from typing import Sequence

from scipy import stats


def mean_and_sem(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean, SEM = s / sqrt(n) with the n-1 sample deviation
    (0 for a single value)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t interval mean +- t_{(1+level)/2, n-1} * SEM; (mean, mean) for a single value."""
    mean, sem = mean_and_sem(values)
    if len(values) < 2:
        return mean, mean
    half_width = float(stats.t.ppf((1 + level) / 2, len(values) - 1)) * sem
    return mean - half_width, mean + half_width
