"""Side measurements of the fast path, beside the throughput runs: how far its pixels are from
the PIL path's, and one core's cost per image of its worker tasks."""

from __future__ import annotations

import argparse
import time

import torch
from torchvision import transforms as T

from dmlbench.data.base import RetrievalDataset
from dmlbench.data.fast import PillowBatchLoader

from .images import JpegFolder


def decode_agreement(
    paths: list[str], args: argparse.Namespace, device: torch.device
) -> dict[str, dict[str, float]]:
    """How far each path's eval pixels are from the PIL path's (in 8-bit levels)."""
    transform = T.Compose([T.Resize(args.resize), T.CenterCrop(args.size), T.ToTensor()])
    dataset = JpegFolder(paths[:64], 10, transform)
    ((reference, _),) = torch.utils.data.DataLoader(dataset, batch_size=64)
    agreement = {}
    for name, options in {"pillow_threads": {"decode_workers": 0}}.items():
        ((fast, _),) = PillowBatchLoader(dataset, batch_size=64, device=device, **options)
        difference = (fast.float().cpu() - reference).abs() * 255
        agreement[name] = {
            "mean_abs_levels": round(float(difference.mean()), 4),
            "p99_abs_levels": round(float(difference.flatten().quantile(0.99)), 2),
            "max_abs_levels": round(float(difference.max()), 2),
        }
    return agreement


def cpu_path_breakdown(
    dataset: RetrievalDataset, cached: RetrievalDataset | None, args: argparse.Namespace
) -> dict[str, float]:
    """One core's milliseconds per image of a worker task (decode + geometric
    steps with Pillow), on the original JPEGs (with and without resize_within_crop) and on the
    pre-resized cache."""
    from dmlbench.data.fast.host import prepare_group
    from dmlbench.data.fast.loader import ImageSource
    from dmlbench.data.fast.plan import AugmentationPlan

    plan = AugmentationPlan.from_transform(dataset.transform)
    count = min(64, len(dataset))
    cases = {"original": (dataset, True), "original_exact": (dataset, False)}
    if cached is not None:
        cases["cache"] = (cached, True)
    result: dict[str, float] = {"images": count}
    for name, (data, within_crop) in cases.items():
        source = ImageSource(data)
        prepare_group(source.load_pil, plan, range(4), 0, within_crop)  # warm up
        started = time.perf_counter()
        prepare_group(source.load_pil, plan, range(count), 1, within_crop)
        result[f"{name}_ms_per_image"] = round((time.perf_counter() - started) / count * 1000, 3)
    return result
