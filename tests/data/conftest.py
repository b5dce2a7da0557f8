"""Fixtures: tiny official-format trees under ``tmp_path`` and a local HTTP server."""

from __future__ import annotations

import pytest
from dataset_trees import (
    FakeServer,
    build_cars_tree,
    build_cub_tree,
    build_inat_tree,
    build_inshop_tree,
    build_sop_tree,
)


@pytest.fixture
def cub_tree(tmp_path):
    return build_cub_tree(tmp_path)


@pytest.fixture
def cars_tree(tmp_path):
    return build_cars_tree(tmp_path)


@pytest.fixture
def sop_tree(tmp_path):
    return build_sop_tree(tmp_path)


@pytest.fixture
def inshop_tree(tmp_path):
    return build_inshop_tree(tmp_path)


@pytest.fixture
def inat_tree(tmp_path):
    return build_inat_tree(tmp_path)


@pytest.fixture
def fake_server():
    server = FakeServer()
    yield server
    server.close()
