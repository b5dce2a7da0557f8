"""The pre-resized image cache (``pre_resized_cache: S``) built over a full-size data set.

    python bench/rehearsal/cache_build.py --data /data/rehearsal --dataset sop --short_sides 256 32 \
        --json bench/results/rehearsal_cache_cpu.json --md bench/results/rehearsal_cache_cpu.md

For each short side S the cache is built from nothing into a temporary folder (``cold``: every
image opened, then copied byte for byte when it is a JPEG already within S, else decoded,
resized and re-encoded), then opened again (``warm``: every copy found, nothing written), as
``Experiment.dataset`` does with ``dmlbench.data.fast.pre_resized``. Recorded per pass: wall and
CPU seconds, images per second, and for the cold pass the files and bytes written; then the
process's peak RSS. The rehearsal trees' images are small (48 px on the longer side), so S=256
measures the per-file cost of a build (hash, stat, copy, atomic rename, 120k files) and S=32 the
resize path; decoding a real 500 px photo costs more per image than these do.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPOSITORY))

from bench.rehearsal.run import machine  # noqa: E402
from dmlbench.data.fast import pre_resized  # noqa: E402
from dmlbench.errors import DMLBenchError  # noqa: E402
from dmlbench.records.environment import cpu_seconds  # noqa: E402
from dmlbench.registry import build  # noqa: E402

DATASET_CLASSES = {
    "cub": "CUB200",
    "cars": "Cars196",
    "sop": "StanfordOnlineProducts",
    "inshop": "InShop",
}


def timed_pass(dataset: Any, short_side: int, root: Path, threads: int) -> tuple[dict[str, float], Any]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    cached = pre_resized(dataset, short_side, root, num_threads=threads, progress=True)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "images_per_s": len(dataset) / wall}, cached


def measure(dataset: Any, short_side: int, threads: int) -> dict[str, Any]:
    """Cold and warm builds of the cache at ``short_side`` in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="dmlbench_cache_bench_") as scratch:
        root = Path(scratch)
        cold, cached = timed_pass(dataset, short_side, root, threads)
        files = [Path(p) for p in cached.paths]
        cold["files"] = len(set(files))
        cold["bytes"] = sum(f.stat().st_size for f in set(files))
        warm, _ = timed_pass(dataset, short_side, root, threads)
    return {"short_side": short_side, "threads": threads, "cold": cold, "warm": warm}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Pre-resized cache build at full size",
        "",
        f"Machine: {report['machine']}. Produced by `bench/rehearsal/cache_build.py` on the trees of "
        "`bench/rehearsal/generate.py` (published counts, images 48 px on the longer side, JPEG).",
        "",
        "| data set | images | short side | threads | cold wall s | cold CPU s | cold images/s | files | "
        "MiB written | warm wall s | warm images/s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["runs"]:
        cold, warm = row["cold"], row["warm"]
        lines.append(
            f"| {row['dataset']} | {row['images']:,} | {row['short_side']} | {row['threads']} | "
            f"{cold['wall_s']:.0f} | {cold['cpu_s']:.0f} | {cold['images_per_s']:,.0f} | {cold['files']:,} | "
            f"{cold['bytes'] / 2**20:.0f} | {warm['wall_s']:.1f} | {warm['images_per_s']:,.0f} | "
            f"{row['peak_rss_mib']:,.0f} |"
        )
    lines += ["", *[f"- {note}" for note in report.get("notes", [])]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="the generated trees (generate.py)")
    parser.add_argument("--dataset", choices=list(DATASET_CLASSES), default="sop")
    parser.add_argument("--short_sides", type=int, nargs="+", default=[256, 32])
    parser.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    try:
        dataset = build("dataset", {DATASET_CLASSES[args.dataset]: {"root": str(args.data)}}, role="dataset")
    except DMLBenchError as error:  # a missing or broken tree: one line, as the project's commands give
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = []
    for short_side in args.short_sides:
        row = {"dataset": args.dataset, "images": len(dataset), **measure(dataset, short_side, args.threads)}
        row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(row), flush=True)
        rows.append(row)
    report = {"machine": machine(), "runs": rows, "notes": args.note, "load_average_before": load_before}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.md:
        args.md.write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
