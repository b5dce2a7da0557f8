"""Fixtures shared by test folders."""

from __future__ import annotations

import functools
import warnings

import pytest


@pytest.fixture
def quiet_progress(monkeypatch):
    """No progress bars and no warnings on stderr, so that a command's error line is all there is
    (warnings about the tiny test data sets are not the line under test)."""
    import dmlbench.progress

    monkeypatch.setattr(dmlbench.progress, "tqdm", functools.partial(dmlbench.progress.tqdm, disable=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
