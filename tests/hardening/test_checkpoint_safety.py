"""Item 1: checkpoints are loaded with weights_only=True (a crafted pickle cannot run code), hold
only plain data, and a damaged latest.pt falls back to latest.prev.pt."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from dmlbench.errors import CorruptFileError
from dmlbench.training import checkpoint


class Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_crafted_pickle_does_not_run(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "latest.pt"
    torch.save({"models": {"trunk": Exploit(marker)}}, path)
    with pytest.raises(CorruptFileError, match=r"latest\.pt.*not a plain checkpoint"):
        checkpoint.load(path)
    assert not marker.exists()


def test_numpy_values_are_stored_as_tensors_and_numbers(tmp_path):
    path = tmp_path / "latest.pt"
    state = {
        "rng": np.arange(5, dtype=np.uint32),
        "score": np.float64(0.25),
        "nested": [np.int64(3), (np.ones(2),)],
    }
    checkpoint.save_atomic(state, path)
    loaded = checkpoint.load(path)  # weights_only=True
    assert torch.equal(loaded["rng"], torch.tensor([0, 1, 2, 3, 4], dtype=torch.uint32))
    assert loaded["score"] == 0.25 and type(loaded["score"]) is float
    assert loaded["nested"][0] == 3 and type(loaded["nested"][0]) is int
    assert torch.equal(loaded["nested"][1][0], torch.ones(2, dtype=torch.float64))


def test_latest_keeps_previous_and_falls_back(tmp_path, capsys):
    path = tmp_path / "latest.pt"
    checkpoint.save_atomic({"epoch": 1}, path, keep_previous=True)
    assert not checkpoint.previous_path(path).exists()  # nothing to keep yet
    checkpoint.save_atomic({"epoch": 2}, path, keep_previous=True)
    assert checkpoint.load(checkpoint.previous_path(path)) == {"epoch": 1}
    path.write_bytes(path.read_bytes()[:20])
    assert checkpoint.load_latest(path) == {"epoch": 1}
    err = capsys.readouterr().err
    assert "latest.pt" in err and "latest.prev.pt" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob(".*.tmp"))
