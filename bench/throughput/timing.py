"""The training step every variant drives, and how it is timed.

Every variant trains the same model the same way: a torchvision trunk (ResNet50 by default) +
linear embedder + linear head, channels_last, autocast (bf16 by default), SGD. ``timed_run``
measures images/s and CPU time per step; ``gpu_time_by_stream`` (torch.profiler) shows, per step,
each CUDA stream's kernel time and how long the GPU was busy at all.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dmlbench.models.trunks import TorchvisionTrunk


class Model(nn.Module):
    """Trunk -> 128-d embedding -> class logits."""

    def __init__(self, arch: str, num_classes: int) -> None:
        super().__init__()
        self.trunk = TorchvisionTrunk(arch, pretrained=False)
        self.embedder = nn.Linear(self.trunk.num_features, 128)
        self.head = nn.Linear(128, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedder(self.trunk(images)))


class Trainer:
    """The model, its optimiser and loss; ``step`` is one training step on a batch."""

    def __init__(self, args: argparse.Namespace, device: torch.device, num_classes: int) -> None:
        self.device = device
        self.model = Model(args.model, num_classes).to(device).to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        self.loss = nn.CrossEntropyLoss()
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[args.precision]

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        labels = labels.to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            loss = self.loss(self.model(images).float(), labels)
        loss.backward()
        self.optimizer.step()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA only)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def close(batches: Any) -> None:
    """End a batch iterator's background work now (the fast loader's workers, a generator)."""
    stop = getattr(batches, "close", None)
    if stop is not None:
        stop()


def timed_run(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    consume: Callable,
    warmup: int,
    steps: int,
    device: torch.device,
) -> dict[str, float]:
    """Run ``warmup`` untimed then ``steps`` timed iterations of ``consume(next(batches))``; also
    the CPU time of the consuming thread and of this whole process (all its threads; worker
    processes not included) per step."""
    try:
        for _ in range(warmup):
            consume(*next(batches))
        synchronize(device)
        started, thread_cpu, process_cpu = time.perf_counter(), time.thread_time(), time.process_time()
        count = 0
        for _ in range(steps):
            images, labels = next(batches)
            consume(images, labels)
            count += int(images.shape[0])
        synchronize(device)
        elapsed = time.perf_counter() - started
        thread_cpu, process_cpu = time.thread_time() - thread_cpu, time.process_time() - process_cpu
    finally:
        close(batches)
    return {
        "images_per_s": round(count / elapsed, 1),
        "steps": steps,
        "seconds": round(elapsed, 3),
        "main_thread_cpu_ms_per_step": round(thread_cpu / steps * 1000, 2),
        "process_cpu_ms_per_step": round(process_cpu / steps * 1000, 2),
    }


def gpu_time_by_stream(
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]], consume: Callable, steps: int, device: torch.device
) -> dict[str, Any]:
    """Where the GPU's time goes while ``consume`` runs on ``batches``: kernel, copy and fill
    time per step on each CUDA stream (torch.profiler, CUDA activity only), the time at least
    one of them ran (the union of their intervals), and the wall time per step. Busy time close
    to the wall time means the GPU is the bottleneck; much less means it waits for the CPU."""
    from torch.profiler import ProfilerActivity, profile

    try:
        for _ in range(5):
            consume(*next(batches))
        synchronize(device)
        with profile(activities=[ProfilerActivity.CUDA]) as profiler:
            started, thread_cpu = time.perf_counter(), time.thread_time()
            for _ in range(steps):
                consume(*next(batches))
            synchronize(device)
            wall, thread_cpu = time.perf_counter() - started, time.thread_time() - thread_cpu
    finally:
        close(batches)
    trace_path = Path(tempfile.mkdtemp(prefix="dmlbench_trace_")) / "trace.json"
    profiler.export_chrome_trace(str(trace_path))
    events = json.loads(trace_path.read_text()).get("traceEvents", [])
    by_stream: dict[str, float] = {}
    intervals = []
    for event in events:
        if event.get("ph") != "X" or event.get("cat") not in ("kernel", "gpu_memcpy", "gpu_memset"):
            continue
        stream = str(event.get("args", {}).get("stream"))
        by_stream[stream] = by_stream.get(stream, 0.0) + float(event.get("dur", 0.0))
        intervals.append((float(event["ts"]), float(event["ts"]) + float(event.get("dur", 0.0))))
    busy, reach = 0.0, -math.inf
    for start, end in sorted(intervals):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    per_step = lambda microseconds: round(microseconds / 1000 / steps, 2)  # noqa: E731
    return {
        "steps": steps,
        "wall_ms_per_step": round(wall / steps * 1000, 2),
        "gpu_busy_ms_per_step": per_step(busy),
        "gpu_ms_per_step_by_stream": {
            k: per_step(v) for k, v in sorted(by_stream.items(), key=lambda kv: -kv[1])
        },
        "main_thread_cpu_ms_per_step": round(thread_cpu / steps * 1000, 2),
    }


def run_variant(
    results: dict, name: str, description: str, body: Callable[[], dict], checkpoint: Callable[[], None]
) -> None:
    """Run one variant's ``body`` and store its outcome (or its error) in ``results["variants"]``."""
    print(f"[bench] {name}: {description}", flush=True)
    started = time.perf_counter()
    try:
        outcome = body()
    except Exception as error:  # a broken variant is reported, the others still run
        outcome = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-2000:]}
    outcome["description"] = description
    results["variants"][name] = outcome
    print(
        f"[bench]   -> ({time.perf_counter() - started:.1f} s) "
        f"{json.dumps({k: v for k, v in outcome.items() if k not in ('traceback', 'description')})}",
        flush=True,
    )
    checkpoint()
