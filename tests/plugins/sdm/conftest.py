"""Fixtures of the SDM tests."""

from __future__ import annotations

import pytest
from sdm_helpers import loss_step_trainer


@pytest.fixture
def make_trainer(tmp_path):
    def factory(losses: dict, plugins: list, miners: dict | None = None):
        return loss_step_trainer(tmp_path, losses, plugins, miners)

    return factory
