"""Deterministic seeds: one experiment seed, derived per fold and reproduction."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch


def derive_seed(seed: int, *parts: Any) -> int:
    """A 31-bit seed determined by ``seed`` and the names of the run (fold, reproduction, ...)."""
    text = "/".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    """Seed python, numpy (which pytorch-metric-learning's samplers use) and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
