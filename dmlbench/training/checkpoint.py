"""Checkpoints as plain dicts, written atomically (temp file + rename)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from torch import nn

from dmlbench.fileio import atomic_write


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then ``os.replace``: a kill at any
    moment leaves either the old file or the new one, never half of one."""
    with atomic_write(path, "wb") as file:
        torch.save(obj, file)


def load(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    # Our own checkpoints hold RNG states (numpy arrays) besides tensors, hence weights_only=False;
    # they are files this tool wrote into the experiment folder.
    return torch.load(path, map_location=device, weights_only=False)


def load_models(saved: dict[str, Any], modules: dict[str, nn.Module]) -> None:
    """Load ``saved["models"][name]`` into each of ``modules`` (the one weight loader for resuming
    training and for testing)."""
    for name, module in modules.items():
        module.load_state_dict(saved["models"][name])
