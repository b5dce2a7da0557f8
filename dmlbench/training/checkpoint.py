"""Checkpoints as plain dicts of tensors and plain data, written atomically (temp file + rename)
and read with ``torch.load(weights_only=True)``: a checkpoint file can never run code.

``latest.pt`` keeps its previous version as ``latest.prev.pt`` (a hard link made before the new
file replaces it), so a ``latest.pt`` damaged on disk falls back to the epoch before.
"""

from __future__ import annotations

import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dmlbench.fileio import _temp_path, atomic_write, disk_errors, fsync_folder, writes_files
from dmlbench.integrity import corrupt

PREVIOUS_SUFFIX = ".prev.pt"


def previous_path(path: str | Path) -> Path:
    """``latest.pt`` -> ``latest.prev.pt``."""
    path = Path(path)
    return path.with_name(path.stem + PREVIOUS_SUFFIX)


def to_plain(value: Any) -> Any:
    """``value`` with numpy arrays as tensors and numpy scalars as Python numbers (containers
    recursively), so that ``weights_only=True`` can load it."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [to_plain(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def save_atomic(obj: Any, path: str | Path, keep_previous: bool = False) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then ``os.replace``: a kill at any
    moment leaves either the old file or the new one, never half of one. ``keep_previous``: the
    file being replaced stays as ``<stem>.prev.pt``."""
    path = Path(path)
    if keep_previous and path.exists() and writes_files():
        previous = previous_path(path)
        link = _temp_path(previous)
        with disk_errors(previous):
            try:
                os.link(path, link)
                os.replace(link, previous)
            except OSError:
                link.unlink(missing_ok=True)  # never a temp file left behind (a full disk fails here too)
                raise
        fsync_folder(path.parent)
    with atomic_write(path, "wb") as file:
        torch.save(to_plain(obj), file)


def load(path: str | Path, device: str | torch.device = "cpu", remedy: str | None = None) -> dict[str, Any]:
    """A checkpoint written by :func:`save_atomic`, tensors only (``weights_only=True``); a file
    that cannot be read raises :class:`dmlbench.errors.CorruptFileError` naming it."""
    path = Path(path)
    remedy = remedy or (
        f"delete it and resume with --resume_training latest; that fold ({path.parent.parent.name}) "
        "then trains again from its last good checkpoint or from the start"
    )
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unpickling refused"
        raise corrupt(path, f"not a plain checkpoint: {first}", remedy) from None
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        zipfile.BadZipFile,
        AttributeError,
    ) as error:
        raise corrupt(
            path, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", remedy
        ) from None
    if not isinstance(saved, dict):
        raise corrupt(path, f"expected a dict, got {type(saved).__name__}", remedy)
    return saved


def load_latest(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """``latest.pt``, or ``latest.prev.pt`` (with a one-line warning) when ``latest.pt`` is
    unreadable and the previous version is good."""
    path = Path(path)
    previous = previous_path(path)
    try:
        return load(path, device)
    except Exception as error:
        if not previous.exists():
            raise
        saved = load(
            previous,
            device,
            remedy=f"both {path.name} and {previous.name} are unreadable: delete both and "
            "resume with --resume_training latest to train that fold again from the start",
        )
        print(f"warning: {error}; using the previous checkpoint {previous.name} instead", file=sys.stderr)
        return saved


def load_models(saved: dict[str, Any], modules: dict[str, nn.Module]) -> None:
    """Load ``saved["models"][name]`` into each of ``modules`` (the one loader of weights for
    resuming training and for testing)."""
    for name, module in modules.items():
        module.load_state_dict(saved["models"][name])
