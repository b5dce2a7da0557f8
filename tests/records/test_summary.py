"""Fold statistics against hand-worked values."""

import math

import pytest

from dmlbench.records.summary import confidence_interval, mean_and_sem


def test_mean_and_sem_hand_worked():
    # values 1,2,3,4: mean 2.5, sample variance 5/3, SEM sqrt(5/3/4)
    mean, sem = mean_and_sem([1, 2, 3, 4])
    assert mean == 2.5
    assert sem == pytest.approx(math.sqrt(5 / 12))


def test_single_value_has_zero_sem():
    assert mean_and_sem([0.7]) == (0.7, 0.0)


def test_confidence_interval_uses_student_t():
    # n = 4: t_{0.975, 3} = 3.182446 (statistical tables)
    low, high = confidence_interval([1, 2, 3, 4])
    half = 3.182446 * math.sqrt(5 / 12)
    assert low == pytest.approx(2.5 - half, abs=1e-5)
    assert high == pytest.approx(2.5 + half, abs=1e-5)
