"""LossBuffer: the per-step values reach the log unchanged, read in blocks, and a non-finite
total stops training naming its step."""

from __future__ import annotations

import math

import pytest
import torch

from dmlbench.training.step_log import LossBuffer


class Bar:
    def __init__(self) -> None:
        self.postfix = None

    def set_postfix(self, refresh: bool = True, **kwargs) -> None:
        self.postfix, self.refreshed = kwargs, refresh


def test_values_logged_per_step_in_blocks():
    calls, bar = [], Bar()
    buffer = LossBuffer(
        lambda group, values, step: calls.append((group, values, step)), bar, epoch=1, every=4
    )
    values = [(0.5 + i, 0.25 * i) for i in range(6)]
    for step, (a, b) in enumerate(values):
        buffer.add({"metric_loss": torch.tensor(a, requires_grad=True) * 1, "extra": torch.tensor(b)}, step)
        assert len(calls) == (4 if step >= 3 else 0)  # nothing read before a block is full
    buffer.flush()
    assert [step for _, _, step in calls] == list(range(6))
    for (group, logged, _), (a, b) in zip(calls, values):
        assert group == "train" and logged == {"metric_loss": pytest.approx(a), "extra": pytest.approx(b)}
    running = None  # the progress bar's moving average of the totals, computed by hand
    for a, b in values:
        running = a + b if running is None else 0.9 * running + 0.1 * (a + b)
    assert bar.postfix == {"loss": f"{running:.4f}"}


def test_non_finite_total_raises_with_its_step():
    buffer = LossBuffer(lambda *args: None, Bar(), epoch=3, every=10)
    buffer.add({"metric_loss": torch.tensor(1.0)}, 20)
    buffer.add({"metric_loss": torch.tensor(math.nan)}, 21)
    with pytest.raises(FloatingPointError, match=r"epoch 3 \(step 21\)"):
        buffer.flush()
