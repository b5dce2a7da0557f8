"""Fixtures of the corruption tests: one finished tiny run and one finished search, made once
for this folder (each test damages its own copy)."""

from __future__ import annotations

from pathlib import Path

import pytest
from corruption_run import RUN, SEARCH

from dmlbench.cli import main


@pytest.fixture(scope="package")
def dataset_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("datasets")


@pytest.fixture(scope="package")
def finished_run(tmp_path_factory, dataset_root) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert (
        main(
            [
                *RUN,
                "--experiment_name",
                "tiny",
                "--root_experiment_folder",
                str(root),
                "--dataset_root",
                str(dataset_root),
            ]
        )
        == 0
    )
    return root / "tiny"


@pytest.fixture(scope="package")
def finished_search(tmp_path_factory, dataset_root) -> Path:
    root = tmp_path_factory.mktemp("searches")
    assert main([*SEARCH, "--root_experiment_folder", str(root), "--dataset_root", str(dataset_root)]) == 0
    return root / "search"


@pytest.fixture(autouse=True)
def _quiet(quiet_progress):
    """Every test here reads stderr: the shared quiet_progress fixture (tests/conftest.py)."""
