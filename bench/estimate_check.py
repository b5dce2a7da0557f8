"""``--estimate`` against the run it projects: the demo, estimated and then run on the same machine.

    python bench/estimate_check.py --out bench/results/estimate_demo_cpu.md [--runs 1]

Each round runs ``python run.py --reproduce_results exp_configs/demo --estimate`` (its projected
total is the last line), then the same command without ``--estimate``, timed with a wall clock
around the whole process; the ratio must lie within [1/1.5, 1.5] (issue: within a factor 1.5).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "days": 86400.0}


def projected_seconds(output: str) -> float:
    match = re.search(r"^estimate: ([\d.]+) (s|min|h|days) in total", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no 'estimate:' line in the output:\n{output[-2000:]}")
    return float(match.group(1)) * UNITS[match.group(2)]


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    rows = []
    for round_index in range(args.runs):
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="estimate_check_") as root:
            base = [sys.executable, "run.py", "--reproduce_results", "exp_configs/demo"]
            base += ["--root_experiment_folder", root]
            probe_s, output = timed([*base, "--estimate"])
            leftovers = os.listdir(root)
            run_s, _ = timed(base)
        projected = projected_seconds(output)
        rows.append((round_index + 1, load_before, projected, probe_s, run_s, projected / run_s, leftovers))
        print(f"round {round_index + 1}: projected {projected:.1f} s, measured {run_s:.1f} s", flush=True)
    lines = [
        "# --estimate on the demo against the measured run",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. "
        f"Produced by `python bench/estimate_check.py --runs {args.runs}`; each round runs --estimate, then "
        "the demo it projects, back to back.",
        "",
        "| round | load avg (1 min) before | projected total s | --estimate took s | measured run s | "
        "projected / measured | files left by --estimate |",
        "|---|---|---|---|---|---|---|",
    ]
    for index, load, projected, probe_s, run_s, ratio, leftovers in rows:
        lines.append(
            f"| {index} | {load:.2f} | {projected:.1f} | {probe_s:.1f} | {run_s:.1f} | {ratio:.2f} | {len(leftovers)} |"
        )
    within = all(1 / 1.5 <= row[5] <= 1.5 for row in rows)
    lines += ["", f"Within a factor 1.5 in every round: {'yes' if within else 'NO'}."]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
