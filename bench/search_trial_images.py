"""Per-trial cost of ``images_in_memory`` in a search: the demo's data set (DemoShapes, 1,536
images of 64 px) made ready for N trials in one process, as the trials of a local search are.
Before: every trial decoded the images again; after: the first decodes, the rest reuse them
(:mod:`dmlbench.data.memory`). Wall and CPU seconds per trial, the data set already generated.

    python bench/search_trial_images.py --trials 5 --root datasets --out bench/results/search_trial_images_cpu.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmlbench.data import memory
from dmlbench.data.demo import DemoShapes
from dmlbench.data.memory import InMemoryDataset


def trial_times(root: str, trials: int, reuse: bool) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each trial's ``InMemoryDataset(...).load()``."""
    memory._decoded.clear()
    times = []
    for _ in range(trials):
        if not reuse:
            memory._decoded.clear()  # the behaviour before: nothing kept between trials
        dataset = DemoShapes(root)  # each trial builds its experiment's data set
        wall, cpu = time.perf_counter(), time.process_time()
        InMemoryDataset(dataset, show_progress=False).load()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--root", default="datasets", help="--dataset_root holding (or to hold) DemoShapes")
    parser.add_argument("--out", type=Path, help="write a Markdown table here")
    args = parser.parse_args()
    DemoShapes(args.root)  # generated once, outside the timing
    rows = []
    for label, reuse in (("before (decoded by every trial)", False), ("after (decoded once, reused)", True)):
        times = trial_times(args.root, args.trials, reuse)
        later = times[1:] or times
        rows.append(
            (
                label,
                times[0][0],
                statistics.median(t[0] for t in later),
                statistics.median(t[1] for t in later),
                sum(t[0] for t in times),
            )
        )
    lines = [
        "# images_in_memory per search trial (bench/search_trial_images.py)",
        "",
        f"Demo data set (DemoShapes, 1,536 images of 64 px), {args.trials} trials in one process; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; the machine was "
        "shared with other work, so CPU seconds are the steadier number.",
        "",
        "| | first trial (s wall) | each later trial (s wall, median) | later trial (s CPU, median) | "
        f"all {args.trials} trials (s wall) |",
        "|---|---|---|---|---|",
        *[f"| {r[0]} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.2f} |" for r in rows],
        "",
    ]
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
