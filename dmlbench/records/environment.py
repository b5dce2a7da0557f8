"""What a report says about where it ran: library versions, the device, and the wall and CPU time
of each phase (``meta/phase_times.json`` and ``meta/phase_cpu_times.json``: seconds per phase,
summed over resumed runs)."""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

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
    commit = git_commit(Path(__file__).resolve().parents[2])
    if commit:  # run from a clone (or an editable install of one)
        found["dmlbench git commit"] = commit
        if found["dmlbench"] == "not installed":
            found["dmlbench"] = "run from a clone (not installed)"
    found["cuda"] = torch.version.cuda or "none (CPU build)"
    found["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return found


def git_commit(folder: Path) -> str | None:
    """``git rev-parse HEAD`` of the work tree whose top is ``folder`` (", uncommitted changes"
    added when tracked files differ from it); None when ``folder`` is no git work tree's top (an
    installed copy) or git is missing."""
    if not (Path(folder) / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = ", uncommitted changes" if status.returncode == 0 and status.stdout.strip() else ""
    return head.stdout.strip() + dirty


#: Phase times of this process not yet written, per meta folder and file (wall and CPU): they are
#: written when the report is (``phase_times``) or when a phase is interrupted, never by a command
#: that fails.
_pending: dict[Path, dict[str, dict[str, float]]] = {}
WALL_FILE, CPU_FILE = "phase_times.json", "phase_cpu_times.json"


def phase_times(meta_dir: Path, file: str = WALL_FILE) -> dict[str, float]:
    """Seconds per phase -- wall time, or with ``file=CPU_FILE`` CPU time -- summed over every
    command on this experiment (resumes included); writes this process's pending times first."""
    _write_pending(meta_dir)
    path = Path(meta_dir) / file
    return json.loads(path.read_text()) if path.exists() else {}


def cpu_seconds() -> float:
    """User + system CPU of this process (all its threads) and of its finished child processes
    (data loader workers, which end with each pass over the data)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@contextlib.contextmanager
def timed_phase(meta_dir: Path, name: str) -> Iterator[None]:
    """Add the wall and CPU time of the ``with`` block to phase ``name`` when it completes or is
    interrupted (Ctrl-C, SIGTERM: the run continues later, and the time is written at once); a
    command that fails with an error writes none of its times, leaving the folder as it was."""
    start, cpu_start = time.perf_counter(), cpu_seconds()
    try:
        yield
    except KeyboardInterrupt:
        _add_pending(meta_dir, name, time.perf_counter() - start, cpu_seconds() - cpu_start)
        _write_pending(meta_dir)
        raise
    _add_pending(meta_dir, name, time.perf_counter() - start, cpu_seconds() - cpu_start)


def _add_pending(meta_dir: Path, name: str, wall: float, cpu: float) -> None:
    files = _pending.setdefault(Path(meta_dir), {WALL_FILE: {}, CPU_FILE: {}})
    for file, seconds in ((WALL_FILE, wall), (CPU_FILE, cpu)):
        files[file][name] = files[file].get(name, 0.0) + seconds


def _write_pending(meta_dir: Path) -> None:
    pending = _pending.pop(Path(meta_dir), None)
    if not pending:
        return
    Path(meta_dir).mkdir(parents=True, exist_ok=True)
    for file, seconds_by_phase in pending.items():
        path = Path(meta_dir) / file
        times = json.loads(path.read_text()) if path.exists() else {}
        for name, seconds in seconds_by_phase.items():
            times[name] = times.get(name, 0.0) + seconds
        write_text_atomic(path, json.dumps(times, indent=2) + "\n")
