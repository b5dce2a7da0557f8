"""What a report says about where it ran: library versions, the device, and the wall time of
each phase (``meta/phase_times.json``: seconds per phase, summed over resumed runs)."""

from __future__ import annotations

import contextlib
import json
import time
from importlib import metadata
from pathlib import Path
from typing import Iterator

from dmlbench.fileio import write_text_atomic

#: Distributions named in the report, by the name they are installed under.
DISTRIBUTIONS = ("torch", "torchvision", "pytorch-metric-learning", "ax-platform", "dmlbench")


def versions() -> dict[str, str]:
    """Installed versions of :data:`DISTRIBUTIONS`, the CUDA version and the GPU name."""
    import torch

    found = {}
    for name in DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["cuda"] = torch.version.cuda or "none (CPU build)"
    found["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return found


def phase_times(meta_dir: Path) -> dict[str, float]:
    path = Path(meta_dir) / "phase_times.json"
    return json.loads(path.read_text()) if path.exists() else {}


@contextlib.contextmanager
def timed_phase(meta_dir: Path, name: str) -> Iterator[None]:
    """Add the wall time of the ``with`` block to phase ``name`` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        times = phase_times(meta_dir)
        times[name] = times.get(name, 0.0) + time.perf_counter() - start
        Path(meta_dir).mkdir(parents=True, exist_ok=True)
        write_text_atomic(Path(meta_dir) / "phase_times.json", json.dumps(times, indent=2) + "\n")
