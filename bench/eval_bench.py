"""Evaluation speed and memory: dmlbench's retrieval_metrics vs pytorch-metric-learning.

Cases (compared to self, 512-d synthetic embeddings: class centre + Gaussian noise):
  sop:  60,502 samples, 11,316 classes of 2-12 samples (Stanford Online Products test set);
  inat: 136,000 samples, classes of 2-100 samples (iNaturalist-sized).
Methods:
  dmlbench   retrieval_metrics (torch backend, exact chunked k-NN, k = largest class - 1);
  pml_faiss  AccuracyCalculator(k="max_bin_count") with its default FaissKNN (needs faiss-cpu);
  pml_torch  AccuracyCalculator(k="max_bin_count") with PML's own CustomKNN(CosineSimilarity(),
             batch_size=...) (its torch path; used on GPUs, where faiss-gpu is rarely installed).
Both compute P@1, R-Precision and MAP@R; the script checks that they agree to 1e-6.

Every measurement runs in a fresh subprocess that loads the saved arrays, then records
  - wall time of the first call (CUDA already initialised, so no context creation) and of
    ``--repeats - 1`` further calls;
  - peak extra host memory: the resident-set high-water mark (ru_maxrss) after the first call
    minus the resident set just before it (VmRSS), so torch/faiss/numpy buffers all count; an
    upper bound (if an earlier peak, e.g. while loading, was higher, it is counted too);
  - peak extra GPU memory: torch.cuda.max_memory_allocated() minus what was allocated before.

    python bench/eval_bench.py --cases sop --methods dmlbench pml_faiss --device cpu \
        --out bench/results/eval_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DIMS = 512
NOISE = 2.0
CASES = {
    "sop": {"samples": 60_502, "classes": 11_316, "min_size": 2, "max_size": 12},
    "inat": {"samples": 136_000, "classes": None, "min_size": 2, "max_size": 100},
}
METRICS = ("precision_at_1", "r_precision", "mean_average_precision_at_r")


def class_sizes(
    rng: np.random.Generator, samples: int, classes: int | None, low: int, high: int
) -> np.ndarray:
    """Class sizes in [low, high] summing exactly to ``samples``."""
    if classes is None:
        classes = int(round(samples / ((low + high) / 2)))
    sizes = rng.integers(low, high + 1, size=classes)
    while sizes.sum() != samples:
        step = 1 if sizes.sum() < samples else -1
        room = np.flatnonzero(sizes < high) if step > 0 else np.flatnonzero(sizes > low)
        count = min(len(room), abs(int(samples - sizes.sum())))
        sizes[rng.choice(room, size=count, replace=False)] += step
    return sizes


def make_case(name: str, scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    spec = CASES[name]
    rng = np.random.default_rng(seed)
    samples = int(spec["samples"] * scale)
    classes = None if spec["classes"] is None else max(1, int(spec["classes"] * scale))
    sizes = class_sizes(rng, samples, classes, spec["min_size"], spec["max_size"])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    labels = labels[rng.permutation(len(labels))]
    centres = rng.standard_normal((len(sizes), DIMS), dtype=np.float32)
    embeddings = centres[labels] + NOISE * rng.standard_normal((len(labels), DIMS), dtype=np.float32)
    return embeddings.astype(np.float32), labels.astype(np.int64)


# ----------------------------------------------------------------------------- worker side


def worker(method: str, data_dir: Path, device: str, repeats: int, pml_batch: int) -> dict:
    """One measurement in this (fresh) process; returns a JSON-able record."""
    import torch

    embeddings = np.load(data_dir / "embeddings.npy")
    labels = np.load(data_dir / "labels.npy")
    if device.startswith("cuda"):
        torch.cuda.init()
        torch.ones(1, device=device) @ torch.ones(1, device=device)  # context + cuBLAS handle
        torch.cuda.synchronize()
    evaluate = _evaluator(method, device, pml_batch)
    gpu_base = torch.cuda.memory_allocated() if device.startswith("cuda") else 0
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    rss_before = current_rss_kib()
    times = []
    for repeat in range(repeats):
        start = time.perf_counter()
        metrics = evaluate(embeddings, labels)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        if repeat == 0:
            rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            gpu_peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0
    return {
        "method": method,
        "device": device,
        "wall_s_first": times[0],
        "wall_s_repeats": times[1:],
        "peak_extra_rss_mib": (rss_peak - rss_before) / 1024,
        "peak_extra_gpu_mib": (gpu_peak - gpu_base) / 2**20,
        "metrics": {name: float(metrics[name]) for name in METRICS},
    }


def current_rss_kib() -> int:
    """Resident set size now (KiB), from /proc/self/status."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def _evaluator(method: str, device: str, pml_batch: int):
    import torch

    if method == "dmlbench":
        sys.path.insert(0, str(REPO))
        from dmlbench.evaluation import RetrievalSettings, retrieval_metrics

        return lambda x, y: retrieval_metrics(x, y, RetrievalSettings(device=device))
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    if method == "pml_faiss":
        import faiss  # noqa: F401  (fail early if missing)

        calculator = AccuracyCalculator(include=METRICS, k="max_bin_count", device=torch.device(device))
    elif method == "pml_torch":
        from pytorch_metric_learning.distances import CosineSimilarity
        from pytorch_metric_learning.utils.inference import CustomKNN

        calculator = AccuracyCalculator(
            include=METRICS,
            k="max_bin_count",
            device=torch.device(device),
            knn_func=CustomKNN(CosineSimilarity(), batch_size=pml_batch),
        )
    else:
        raise SystemExit(f"unknown method {method}")

    def evaluate(x, y):
        # PML's FaissKNN uses L2 distance on what it is given: normalise first, as MLRC does
        # (dmlbench normalises inside retrieval_metrics; this copy is counted for PML).
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        return calculator.get_accuracy(x, y)

    return evaluate


# ----------------------------------------------------------------------------- driver side


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            info["cpu"] = next(
                line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")
            )
        with open("/proc/meminfo") as meminfo:
            info["memory_gib"] = round(int(meminfo.readline().split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    for module in ("torch", "numpy", "pytorch_metric_learning", "faiss"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    import torch

    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_one(method: str, data_dir: Path, device: str, repeats: int, pml_batch: int, timeout: float) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--data-dir",
        str(data_dir),
        "--device",
        device,
        "--repeats",
        str(repeats),
        "--pml-batch",
        str(pml_batch),
    ]
    load_before = os.getloadavg()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"method": method, "device": device, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {
            "method": method,
            "device": device,
            "error": (done.stderr or done.stdout).strip().splitlines()[-1:],
        }
    record = json.loads(done.stdout.strip().splitlines()[-1])
    record["load_average_before"] = load_before
    return record


def markdown(report: dict) -> str:
    lines = [
        "# Evaluation benchmark: dmlbench vs pytorch-metric-learning",
        "",
        f"Command: `{report['command']}`",
        "",
        "Machine: " + ", ".join(f"{k}={v}" for k, v in report["machine"].items()),
        "",
        "| case | samples | k | method | device | first call (s) | later calls (s) | peak extra RSS (MiB) "
        "| peak extra GPU (MiB) | P@1 | R-Prec | MAP@R |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in report["cases"]:
        for record in case["runs"]:
            if "error" in record:
                lines.append(
                    f"| {case['case']} | {case['samples']} | {case['k']} | {record['method']} | "
                    f"{record['device']} | error: {record['error']} | | | | | | |"
                )
                continue
            later = ", ".join(f"{t:.3f}" for t in record["wall_s_repeats"]) or "-"
            m = record["metrics"]
            lines.append(
                f"| {case['case']} | {case['samples']} | {case['k']} | {record['method']} | {record['device']} | "
                f"{record['wall_s_first']:.3f} | {later} | {record['peak_extra_rss_mib']:.0f} | "
                f"{record['peak_extra_gpu_mib']:.0f} | {m['precision_at_1']:.4f} | {m['r_precision']:.4f} | "
                f"{m['mean_average_precision_at_r']:.4f} |"
            )
        if case.get("max_metric_difference") is not None:
            lines.append(
                f"| {case['case']} | | | max metric difference between methods: "
                f"{case['max_metric_difference']:.2e} | | | | | | | | |"
            )
    lines += ["", "Notes: " + report.get("notes", "")]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["sop"], choices=sorted(CASES))
    parser.add_argument("--methods", nargs="+", default=["dmlbench", "pml_faiss"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--baseline-device", default=None, help="device for the PML methods (default: --device)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="calls per measurement process")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the cases (for a smoke test)")
    parser.add_argument("--pml-batch", type=int, default=4096, help="query batch of PML's CustomKNN")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement process")
    parser.add_argument("--out", type=Path, default=None, help="JSON report (a .md is written beside it)")
    parser.add_argument("--notes", default="")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data_dir, args.device, args.repeats, args.pml_batch)))
        return

    report = {
        "command": "python " + " ".join([os.path.relpath(__file__, REPO)] + sys.argv[1:]),
        "machine": machine(),
        "cases": [],
        "notes": args.notes,
    }
    with tempfile.TemporaryDirectory() as scratch:
        for case in args.cases:
            embeddings, labels = make_case(case, args.scale)
            data_dir = Path(scratch) / case
            data_dir.mkdir()
            np.save(data_dir / "embeddings.npy", embeddings)
            np.save(data_dir / "labels.npy", labels)
            largest = int(np.bincount(labels).max())
            entry = {
                "case": case,
                "samples": len(labels),
                "classes": int(len(np.unique(labels))),
                "k": largest - 1,
                "runs": [],
            }
            report["cases"].append(entry)
            for method in args.methods:
                device = args.device if method == "dmlbench" else (args.baseline_device or args.device)
                record = run_one(method, data_dir, device, args.repeats, args.pml_batch, args.timeout)
                entry["runs"].append(record)
                print(json.dumps({"case": case, **record}), flush=True)
                _write(report, args.out)
            values = [r["metrics"] for r in entry["runs"] if "metrics" in r]
            if len(values) > 1:
                entry["max_metric_difference"] = max(
                    abs(v[m] - values[0][m]) for v in values[1:] for m in METRICS
                )
            _write(report, args.out)
    if args.out is None:
        print(markdown(report))


def _write(report: dict, out: Path | None) -> None:
    """Write after every measurement, so that an interrupted run keeps what it measured."""
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))


if __name__ == "__main__":
    main()
