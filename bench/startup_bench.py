"""Start-up cost of the command line: CPU seconds (user + system, the process and its children)
of ``--help`` and of a mistyped flag, next to a bare ``import torch, torchvision,
pytorch_metric_learning``. CPU time, not wall time, so that other work on the machine does not
inflate it.

    python bench/startup_bench.py --repeats 5 --out bench/results/startup_cpu.md [--repo DIR]

``--repo`` measures another checkout (e.g. a ``git worktree`` of an older commit) for a
before/after comparison; the median of ``--repeats`` runs is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COMMANDS = {
    "python run.py --help": ["run.py", "--help"],
    "python -m dmlbench --help": ["-m", "dmlbench", "--help"],
    "python run.py --evalute (mistyped flag)": ["run.py", "--evalute"],
    "python run.py --experiment-name x (hyphen)": ["run.py", "--experiment-name", "x"],
    "import torch, torchvision, pytorch_metric_learning": [
        "-c",
        "import torch, torchvision, pytorch_metric_learning",
    ],
}


def cpu_seconds(argv: list[str], cwd: Path) -> float:
    """User + system CPU seconds of ``python argv`` run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to measure (default: this one)")
    parser.add_argument("--out", type=Path, help="append a Markdown table to this file")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    rows = []
    for label, argv in COMMANDS.items():
        times = [cpu_seconds(argv, args.repo) for _ in range(args.repeats)]
        rows.append((label, statistics.median(times), min(times), max(times)))
        print(f"{label}: median {rows[-1][1]:.2f} s CPU", flush=True)
    lines = [
        f"### commit {commit or '?'} ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {args.repeats} runs each)",
        "",
        "| command | CPU s (median) | min | max |",
        "|---|---|---|---|",
        *[f"| `{label}` | {median:.2f} | {low:.2f} | {high:.2f} |" for label, median, low, high in rows],
        "",
    ]
    if args.out:
        with open(args.out, "a", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
