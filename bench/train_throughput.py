"""Training throughput (images/s) of a ResNet50 step fed by each data path.

Compares, on a synthetic JPEG data set of CUB-like images (about 500x375, quality 90):
  (a) the reference path: PIL + torchvision transforms in DataLoader workers, at several worker counts;
  (b) dmlbench's fast path: PillowBatchLoader with its defaults (``b_fast``), the same reading a
      pre-resized cache (``b_fast_cache256``), and variants of it with one choice changed;
  (c) the bound: the model alone on a batch already on the GPU.
Every variant trains the same model the same way (batch 128 at 224 px, channels_last, bf16
autocast, SGD). Targets (stated for one H100): (b) >= 85% of (c), >= 2x (a). A GPU-time diagnosis
(torch.profiler) shows, per step, each CUDA stream's kernel time and how long the GPU was busy at
all, for the bound and for the fast path's variants.

    python bench/train_throughput.py --out bench/results/train_throughput_h200.json   # GPU
    python bench/train_throughput.py --quick                                           # CPU smoke run
    python bench/train_throughput.py --from-json R.json --headline b_fast=b_cpu_w12    # re-summarise

Writes the JSON results and a Markdown table next to it (same name, .md). This file parses the
command line and runs the variants in order; the parts live in ``bench/throughput/``: ``images``
(the data set), ``paths`` (the data paths and the fast path's variants), ``timing`` (the step and
its timing), ``diagnostics`` (pixel agreement, CPU cost per image), ``report`` (summary, table,
results files).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

_BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(_BENCH.parent))  # dmlbench, from the repository
sys.path.insert(0, str(_BENCH))  # the throughput package beside this file

from throughput.diagnostics import cpu_path_breakdown, decode_agreement  # noqa: E402
from throughput.images import JpegFolder, make_jpeg_dataset  # noqa: E402
from throughput.paths import fast_batches, fast_configs, pil_batches, synthetic_batches, train_transform  # noqa: E402
from throughput.report import environment, merge_run, previous_run, summarise, write_results  # noqa: E402
from throughput.timing import Trainer, gpu_time_by_stream, run_variant, timed_run  # noqa: E402

from dmlbench.data.base import RetrievalDataset  # noqa: E402
from dmlbench.data.fast import pre_resized  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line, then re-summarise a results file (--from-json) or run the variants."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny CPU-sized run (smoke test)")
    parser.add_argument("--out", default=None, help="JSON results file (a .md table is written beside it)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "none"])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--workers", default="8,12", help="DataLoader worker counts for (a)")
    parser.add_argument("--cpu-workers", default="8,14", help="decode_workers tried")
    parser.add_argument("--exact-workers", default="12", help="the same with resize_within_crop=False")
    parser.add_argument("--cache-workers", default="8", help="the same on the pre-resized cache")
    parser.add_argument("--cpu-threads", default="12", help="decode_workers=0 with this many threads")
    parser.add_argument(
        "--compare-defaults",
        action="store_true",
        help="also run the cache variant with 16 images per task, and with Python's own switch interval",
    )
    parser.add_argument("--fast-prefetch", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated variant names to run (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated variant names to skip")
    parser.add_argument(
        "--profile-steps", type=int, default=8, help="steps profiled per GPU-time diagnosis (0: none)"
    )
    parser.add_argument(
        "--budget-s", type=float, default=None, help="start no new variant after this many seconds"
    )
    parser.add_argument(
        "--headline", default=None, help="b_fast=NAME,b_fast_cache256=NAME: the variants counted as (b)"
    )
    parser.add_argument(
        "--previous", default=None, help="a results file whose variants are kept as the previous run"
    )
    parser.add_argument(
        "--merge",
        action="append",
        default=[],
        metavar="PATH=LABEL",
        help="with --from-json: add a later run's variants as NAME@LABEL, each against its own run's bound",
    )
    parser.add_argument(
        "--from-json", default=None, help="only recompute the summary and table of a results file"
    )
    parser.add_argument("--note", action="append", default=[], help="a note for the results (repeatable)")
    args = parser.parse_args(argv)
    headline = dict(item.split("=", 1) for item in args.headline.split(",")) if args.headline else None
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        results["notes"] = results.get("notes", []) + args.note
        if headline:
            results["config"]["headline"] = headline
        if args.previous:
            results["previous"] = previous_run(Path(args.previous))
        for item in args.merge:
            path, label = item.rsplit("=", 1)
            merge_run(results, json.loads(Path(path).read_text()), label)
        summarise(results)
        write_results(results, Path(args.out or args.from_json))
        return results
    if args.quick:
        args.images, args.batch_size, args.size, args.resize = 32, 8, 64, 72
        args.model, args.steps, args.warmup, args.workers = "resnet18", 3, 1, "0,2"
        args.cpu_workers = args.exact_workers = args.cache_workers = args.cpu_threads = "1"
        args.compare_defaults = True
        args.profile_steps = min(args.profile_steps, 2)
        args.precision = "none" if args.device == "cpu" else args.precision
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.only.split(",")))
    wanted = lambda name: name not in skip and (not only or name in only)  # noqa: E731
    clock = time.perf_counter()
    within_budget = lambda: args.budget_s is None or time.perf_counter() - clock < args.budget_s  # noqa: E731
    num_classes = 100

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="dmlbench_bench_"))
    paths, data_info = make_jpeg_dataset(data_dir / "jpegs", args.images, args.quick, os.cpu_count() or 1)
    print(f"[bench] data: {data_info}", flush=True)
    results: dict[str, Any] = {
        "environment": environment(device),
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "data_dir", "from_json")},
        "data": data_info,
        "variants": {},
    }
    if headline:
        results["config"]["headline"] = headline
    if args.previous:
        results["previous"] = previous_run(Path(args.previous))

    def checkpoint() -> None:
        if args.out:
            summarise(results)
            write_results(results, Path(args.out), quiet=True)

    trainer = Trainer(args, device, num_classes)
    transform = train_transform(args.size, args.resize)
    dataset = JpegFolder(paths, num_classes, transform)
    total = 2 * (args.steps + args.warmup) * args.batch_size  # enough for every variant's run
    bound_batches = lambda: synthetic_batches(args, device, num_classes)  # noqa: E731

    if wanted("c_model_only"):
        run_variant(
            results,
            "c_model_only",
            "bound: the step on one batch already on the device",
            lambda: timed_run(bound_batches(), trainer.step, args.warmup, args.steps, device),
            checkpoint,
        )

    cached = None
    configs = fast_configs(args)
    if any(wanted(name) and uses_cache for name, (_, uses_cache, _) in configs.items()) or wanted(
        "a_pil_cache256"
    ):
        started = time.perf_counter()
        cached = pre_resized(dataset, args.resize, data_dir / "cache", num_threads=os.cpu_count())
        results["data"]["cache_build_seconds"] = round(time.perf_counter() - started, 2)
        cached.transform = transform

    def fast_variant(data: RetrievalDataset, options: dict) -> dict:
        counts: Counter = Counter()
        alone = timed_run(
            fast_batches(data, args, device, total, **options),
            lambda *b: None,
            2,
            max(args.steps // 3, 2),
            device,
        )
        outcome = timed_run(
            fast_batches(data, args, device, total, counts, **options),
            trainer.step,
            args.warmup,
            args.steps,
            device,
        )
        outcome["loader_only_images_per_s"] = alone["images_per_s"]
        outcome["loader_only_process_cpu_ms_per_batch"] = alone["process_cpu_ms_per_step"]
        outcome["images_decoded_by"] = dict(counts)
        outcome["options"] = {k: str(v) for k, v in options.items()}
        return outcome

    def run_fast(names: list[str]) -> None:
        for name in names:
            description, uses_cache, options = configs[name]
            if wanted(name) and within_budget():
                data = cached if uses_cache else dataset
                run_variant(
                    results,
                    name,
                    description,
                    lambda data=data, options=options: fast_variant(data, options),
                    checkpoint,
                )

    headline_names = ["b_fast", "b_fast_cache256"]
    run_fast(headline_names)  # first what the targets are judged on, then the diagnosis, then the rest

    if args.profile_steps > 0 and device.type == "cuda" and wanted("gpu_time") and within_budget():
        results["gpu_time"] = {}
        diagnosed = {
            "c_model_only": lambda: bound_batches(),
            "b_fast": lambda: fast_batches(dataset, args, device, total),
            "b_fast_cache256": lambda: (
                fast_batches(cached, args, device, total) if cached is not None else None
            ),
        }
        for name, make in diagnosed.items():
            try:
                batches = make()
                if batches is not None:
                    results["gpu_time"][name] = gpu_time_by_stream(
                        batches, trainer.step, args.profile_steps, device
                    )
            except Exception as error:
                results["gpu_time"][name] = {"error": f"{type(error).__name__}: {error}"}
            print(f"[bench] gpu time, {name}: {results['gpu_time'][name]}", flush=True)
        checkpoint()

    for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
        name = f"a_pil_workers{workers}"
        if not wanted(name) or not within_budget():
            continue
        steps = max(2, args.steps // 4) if workers <= 2 else max(2, args.steps // 2)

        def reference(workers: int = workers, steps: int = steps) -> dict:
            outcome = timed_run(
                pil_batches(dataset, args, workers, total), trainer.step, min(args.warmup, 5), steps, device
            )
            alone = timed_run(
                pil_batches(dataset, args, workers, total), lambda *b: None, 2, max(steps // 2, 2), device
            )
            outcome["loader_only_images_per_s"] = alone["images_per_s"]
            return outcome

        run_variant(
            results,
            name,
            f"reference: PIL + torchvision transforms, DataLoader with {workers} workers",
            reference,
            checkpoint,
        )

    run_fast([name for name in configs if name not in headline_names])

    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    if wanted("a_pil_cache256") and cached is not None and worker_counts and within_budget():
        workers = max(worker_counts)
        run_variant(
            results,
            "a_pil_cache256",
            f"reference path reading the pre-resized cache, {workers} workers",
            lambda: timed_run(
                pil_batches(cached, args, workers, total),
                trainer.step,
                min(args.warmup, 5),
                max(2, args.steps // 2),
                device,
            ),
            checkpoint,
        )

    if wanted("c_model_only"):  # again, to show the run-to-run spread of the bound
        run_variant(
            results,
            "c_model_only_again",
            "bound, measured again at the end",
            lambda: timed_run(bound_batches(), trainer.step, args.warmup, args.steps, device),
            checkpoint,
        )
    for key, work in (
        ("cpu_path_breakdown", lambda: cpu_path_breakdown(dataset, cached, args)),
        ("decode_agreement_eval_pixels", lambda: decode_agreement(paths, args, device)),
    ):
        if wanted(key):
            try:
                results[key] = work()
            except Exception as error:
                results[key] = {"error": f"{type(error).__name__}: {error}"}
            print(f"[bench] {key}: {results[key]}", flush=True)
    results["notes"] = list(args.note)
    results["seconds_total"] = round(time.perf_counter() - clock, 1)
    summarise(results)
    print(json.dumps(results["summary"], indent=1), flush=True)
    if args.out:
        write_results(results, Path(args.out))
    return results


if __name__ == "__main__":
    main()
