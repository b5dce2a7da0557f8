"""The data paths whose training throughput is compared, each an iterator of (images, labels)
batches that never ends before the run does:

- (a) the reference path: PIL + torchvision transforms in DataLoader workers (what
  powerful-benchmarker and the papers' code use);
- (b) dmlbench's fast path: PillowBatchLoader with its defaults (``b_fast``), and the same reading
  a pre-resized cache (short side 256, ``b_fast_cache256``); beside them, one choice varied at a
  time (``fast_configs``): worker-process counts, resize_within_crop=False, threads instead of
  processes (the loader's former GPU-decoding mode was removed: it measured slower);
- (c) the bound: one batch already on the device, fed again and again.

Every path applies the same augmentation: Resize 256 -> RandomResizedCrop 224 (scale 0.16-1) ->
flip, ImageNet normalisation.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

import torch
from torchvision import transforms as T

from dmlbench.data.base import RetrievalDataset
from dmlbench.data.fast import PillowBatchLoader

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def train_transform(size: int, resize: int) -> T.Compose:
    """The reference augmentation; the fast loader reads the same transform and follows it."""
    return T.Compose(
        [
            T.Resize(resize),
            T.RandomResizedCrop(size, scale=(0.16, 1.0)),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )


def many_samples(length: int, total: int) -> torch.utils.data.Sampler:
    """Shuffled indices, repeated passes, so one iterator covers the whole run (no epoch restarts)."""
    return torch.utils.data.RandomSampler(
        range(length), num_samples=total, generator=torch.Generator().manual_seed(0)
    )


def pil_batches(dataset: RetrievalDataset, args: argparse.Namespace, workers: int, total: int) -> Iterator:
    """(a): a torch DataLoader with ``workers`` worker processes (0: in this process)."""
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch_size,
        sampler=many_samples(len(dataset), total),
        drop_last=True,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if workers > 0 else None,
        persistent_workers=workers > 0,
    )
    return iter(loader)


def fast_batches(
    dataset: RetrievalDataset,
    args: argparse.Namespace,
    device: torch.device,
    total: int,
    counts: dict | None = None,
    **options: Any,
) -> Iterator:
    """A PillowBatchLoader epoch with ``options`` (its keyword arguments) over its defaults."""
    options.setdefault("prefetch", args.fast_prefetch)
    loader = PillowBatchLoader(
        dataset,
        batch_size=args.batch_size,
        sampler=many_samples(len(dataset), total),
        drop_last=True,
        device=device,
        channels_last=True,
        **options,
    )
    if counts is not None:
        loader.decode_counts = counts  # shared, so the caller can read which decoder ran
    return iter(loader)


def synthetic_batches(args: argparse.Namespace, device: torch.device, num_classes: int) -> Iterator:
    """(c): the same random batch on ``device``, forever."""
    images = torch.randn(args.batch_size, 3, args.size, args.size, device=device)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, num_classes, (args.batch_size,), device=device)
    while True:
        yield images, labels


def fast_configs(args: argparse.Namespace) -> dict[str, tuple[str, bool, dict[str, Any]]]:
    """name -> (description, reads the pre-resized cache, PillowBatchLoader options). ``b_fast``
    and ``b_fast_cache256`` use the loader's defaults; the others vary one choice."""
    cores = os.cpu_count() or 1
    configs: dict[str, tuple[str, bool, dict[str, Any]]] = {
        "b_fast": ("PillowBatchLoader, defaults", False, {}),
        "b_fast_cache256": (
            f"PillowBatchLoader, defaults, reading the pre-resized cache (short side {args.resize})",
            True,
            {},
        ),
    }
    counts = lambda text: [int(n) for n in text.split(",") if n.strip() and 0 < int(n) < cores]  # noqa: E731
    for workers in counts(args.cpu_workers):
        configs[f"b_cpu_w{workers}"] = (f"{workers} worker processes", False, {"decode_workers": workers})
    for workers in counts(args.exact_workers):
        configs[f"b_cpu_exact_w{workers}"] = (
            f"{workers} worker processes, resize_within_crop=False (the reference's operations)",
            False,
            {"decode_workers": workers, "resize_within_crop": False},
        )
    for workers in counts(args.cache_workers):
        configs[f"b_cpu_cache256_w{workers}"] = (
            f"{workers} worker processes, pre-resized cache",
            True,
            {"decode_workers": workers},
        )
    if args.compare_defaults:
        configs["b_fast_cache256_t16"] = (
            "defaults but 16 images per task, pre-resized cache",
            True,
            {"images_per_task": 16},
        )
        configs["b_fast_cache256_switch5ms"] = (
            "defaults but Python's own switch interval (5 ms), pre-resized cache",
            True,
            {"switch_interval": None},
        )
    for threads in counts(args.cpu_threads):
        configs[f"b_cpu_threads{threads}"] = (
            f"{threads} threads in the training process (no worker processes)",
            False,
            {"decode_workers": 0, "num_threads": threads},
        )
    return configs
