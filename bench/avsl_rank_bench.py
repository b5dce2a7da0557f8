"""Test-time ranking by AVSL's final distance D: wall time and peak memory of retrieval_metrics
with the AVSL plugin's similarity (compared to self, every pair scored by D in bounded blocks).

Synthetic rows: L levels x E dims of embeddings (class centre + noise) and certainties in
[0, 0.3]; links, a, b random. Classes of 2-12 samples as in SOP's test set. The SOP-sized case is
60,502 samples, 3 levels x 512 dims:

    python bench/avsl_rank_bench.py --samples 60502 --device cuda --out bench/results/avsl_rank_gpu.json
    python bench/avsl_rank_bench.py --samples 600 --device cpu --out bench/results/avsl_rank_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dmlbench.evaluation import RetrievalSettings, retrieval_metrics  # noqa: E402
from dmlbench.plugins.avsl.plugin import AVSL  # noqa: E402


def synthetic(samples: int, levels: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    sizes = []
    while sum(sizes) < samples:
        sizes.append(int(rng.integers(2, 13)))
    sizes[-1] -= sum(sizes) - samples
    if sizes[-1] < 2:  # a lone sample joins the class before it
        lone = sizes.pop()
        sizes[-1] += lone
    labels = np.repeat(np.arange(len(sizes)), sizes)
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(sizes), levels * dim, generator=g)
    embeddings = centres[torch.from_numpy(labels)] + 3.0 * torch.randn(samples, levels * dim, generator=g)
    certainties = 0.3 * torch.rand(samples, levels * dim, generator=g)
    return torch.cat([embeddings, certainties], dim=1), torch.from_numpy(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=60502)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--chunk_size", type=int, default=None, help="queries per block (default: library's)")
    parser.add_argument("--reference_chunk_size", type=int, default=None)
    parser.add_argument(
        "--max_elements", type=int, default=2**24, help="numbers per [rows, refs, dim] temporary"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows, labels = synthetic(args.samples, args.levels, args.dim, args.seed)
    plugin = AVSL(
        num_classes=10,
        embedding_size=rows.shape[1],
        num_levels=args.levels,
        eval_max_elements=args.max_elements,
    )
    g = torch.Generator().manual_seed(args.seed + 1)
    plugin.collector.update_links(
        [torch.randn(args.dim, args.dim, generator=g) for _ in range(args.levels - 1)]
    )
    similarity = plugin.eval_similarity()
    rows = rows.to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before_gpu = torch.cuda.memory_allocated()
    rss_before = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
    start = time.perf_counter()
    metrics = retrieval_metrics(
        rows,
        labels,
        RetrievalSettings(
            similarity=similarity,
            device=device,
            chunk_size=args.chunk_size,
            reference_chunk_size=args.reference_chunk_size,
        ),
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {
        "command": "python " + " ".join(sys.argv),
        "samples": args.samples,
        "levels": args.levels,
        "dim": args.dim,
        "device": str(device),
        "seconds": round(seconds, 3),
        "peak_extra_rss_mib": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before, 1
        ),
        "peak_extra_gpu_mib": round((torch.cuda.max_memory_allocated() - before_gpu) / 2**20, 1)
        if device.type == "cuda"
        else 0.0,
        "metrics": metrics,
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
