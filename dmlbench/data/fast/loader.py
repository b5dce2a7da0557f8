"""A batch loader that decodes and augments JPEGs with Pillow in worker processes, and hands
over uint8 batches normalised on the device.

Drop-in for ``torch.utils.data.DataLoader(dataset, batch_size, sampler=..., drop_last=...)`` over
a :class:`~dmlbench.data.base.RetrievalDataset` or :class:`~dmlbench.data.base.TransformedSubset`:
it yields ``(images, labels)`` batches in the sampler's order with the same labels, ``images``
already on ``device`` and normalised like the dataset's own torchvision transform.

How (:mod:`dmlbench.data.fast.host`): worker processes (or threads) decode with Pillow and apply
the geometric steps with Pillow as the reference path does (the same pixels for the same random
parameters with ``resize_within_crop=False``; the default ``True`` halves the work when a Resize
precedes the crop and moves some values by up to 2 levels of 255, see
:mod:`dmlbench.data.fast.pil_augment`); the uint8 batch is copied to the device on a side stream
and normalised there. The GPU is left to the model. The random parameters come from this
loader's own generator (same distributions as the PIL path, another random stream).

Speed (``bench/results/train_throughput_h200.md``; one H200, 16 CPU cores, ResNet50 at batch 128
stepping at ~4300 images/s alone): it fed 3666 images/s from the pre-resized cache (85% of the
step alone) and 2771 from ~460x387 JPEGs (65%, bound by the cores' Pillow work). An earlier mode
that decoded with nvjpeg and resampled on the GPU measured slower (2437-2605 images/s) and was
removed.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dmlbench.data.base import RetrievalDataset, TransformedSubset, load_rgb_image
from dmlbench.data.fast.host import HostPipeline
from dmlbench.data.fast.plan import AugmentationPlan
from dmlbench.errors import ConfigError


class ImageSource:
    """Where a dataset's samples come from: file paths (or, for datasets that post-process their
    images in ``load_image``, that method), labels, and the transform to reproduce."""

    def __init__(self, dataset: Any) -> None:
        if isinstance(dataset, TransformedSubset):
            base, base_indices = dataset.dataset, np.asarray(dataset.indices, dtype=np.int64)
        elif isinstance(dataset, RetrievalDataset):
            base, base_indices = dataset, np.arange(len(dataset), dtype=np.int64)
        else:
            raise ConfigError(
                f"fast data path: {type(dataset).__name__} is not a RetrievalDataset or TransformedSubset"
            )
        self.base = base
        self.base_indices = base_indices
        self.labels = np.asarray(dataset.labels, dtype=np.int64)
        self.transform = dataset.transform
        # A subclass that crops or edits images in load_image is read through that method.
        self.uses_load_image = type(base).load_image is not RetrievalDataset.load_image

    def __len__(self) -> int:
        return len(self.base_indices)

    def load_pil(self, index: int) -> Any:
        """Sample ``index`` as a PIL RGB image, as the reference path loads it."""
        base_index = int(self.base_indices[index])
        if self.uses_load_image:
            return self.base.load_image(base_index).convert("RGB")
        return load_rgb_image(self.base.paths[base_index])


def default_decode_workers() -> int:
    """Worker processes: the usable cores less two (the training
    loop and the staging thread), at most 24; 0 (threads in this process) below 4 cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(24, cores - 2) if cores >= 4 else 0


class SwitchInterval:
    """``sys.setswitchinterval`` held by running epochs: the first sets it, the last restores the
    value found before. How long a thread that wants the interpreter lock waits before asking
    its holder to hand it over (Python's default: 5 ms): the training loop gives the lock up at
    every PyTorch call and may then wait that long while a loader thread runs Python code."""

    _lock = threading.Lock()
    _holders = 0
    _saved: float | None = None

    @classmethod
    def hold(cls, seconds: float) -> None:
        with cls._lock:
            if cls._holders == 0:
                cls._saved = sys.getswitchinterval()
                sys.setswitchinterval(seconds)
            cls._holders += 1

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._holders -= 1
            if cls._holders == 0 and cls._saved is not None:
                sys.setswitchinterval(cls._saved)
                cls._saved = None


def _batches(
    length: int,
    batch_size: int | None,
    sampler: Iterable[int] | None,
    batch_sampler: Iterable[Sequence[int]] | None,
    drop_last: bool,
) -> Iterable[Sequence[int]]:
    if batch_sampler is not None:
        if batch_size not in (None, 1) or sampler is not None or drop_last:
            raise ConfigError("fast data path: batch_sampler excludes batch_size, sampler and drop_last")
        return batch_sampler
    if batch_size is None or batch_size < 1:
        raise ConfigError(f"fast data path: batch_size must be >= 1, got {batch_size}")
    indices = sampler if sampler is not None else torch.utils.data.SequentialSampler(range(length))
    return torch.utils.data.BatchSampler(indices, batch_size, drop_last)


class PillowBatchLoader:
    """Batches ``(images [B, 3, h, w] on device, labels int64 [B] on the CPU, pinned for CUDA)``.

    Args:
        dataset: a RetrievalDataset or TransformedSubset; its ``transform`` (a torchvision
            ``Compose`` of the steps :class:`AugmentationPlan` supports) defines the output.
        batch_size, sampler, batch_sampler, drop_last: as for ``torch.utils.data.DataLoader``.
        transform: use this ``Compose`` instead of the dataset's.
        device: where the batches are delivered (default: CUDA when available).
        generator: a ``torch.Generator``; each epoch draws its augmentation seed from it (as the
            DataLoader draws its base seed). Without it, epoch ``e`` uses ``seed + e``.
        decode_workers: worker processes (0: ``num_threads`` threads
            of this process); default :func:`default_decode_workers`.
        resize_within_crop: a Resize followed by a crop resizes only
            what the crop keeps (the same filter; up to 2 levels of 255 from Pillow's rounding;
            False: the reference's operations, bit for bit).
        images_per_task: images per worker task (a batch is split into
            tasks; changing it changes the random stream).
        switch_interval: while an epoch runs, ``sys.setswitchinterval(switch_interval)`` (the
            previous value comes back when the last running epoch ends); the training loop then
            waits less for the interpreter lock after each PyTorch call. None: leave it alone.
        num_threads: threads doing the tasks when ``decode_workers=0``.
        prefetch: batches prepared ahead.
        channels_last: return images in channels-last memory format.
        out_dtype: dtype of the images (float32 like the PIL path, or bfloat16/float16).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        sampler: Iterable[int] | None = None,
        batch_sampler: Iterable[Sequence[int]] | None = None,
        drop_last: bool = False,
        *,
        transform: Any = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        decode_workers: int | None = None,
        resize_within_crop: bool = True,
        images_per_task: int = 32,
        switch_interval: float | None = 0.0005,
        num_threads: int | None = None,
        prefetch: int = 2,
        channels_last: bool = False,
        out_dtype: torch.dtype = torch.float32,
    ) -> None:
        self.source = ImageSource(dataset)
        chosen = transform if transform is not None else self.source.transform
        if chosen is None:
            raise ConfigError("fast data path: the dataset has no transform; pass transform=Compose([...])")
        self.plan = AugmentationPlan.from_transform(chosen)
        self.batch_sampler = _batches(len(self.source), batch_size, sampler, batch_sampler, drop_last)
        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.generator = generator
        self.seed = int(seed)
        self.decode_workers = (
            default_decode_workers() if decode_workers is None else max(0, int(decode_workers))
        )
        self.resize_within_crop = bool(resize_within_crop)
        if images_per_task < 1:
            raise ConfigError(f"fast data path: images_per_task must be >= 1, got {images_per_task}")
        self.images_per_task = int(images_per_task)
        if switch_interval is not None and switch_interval <= 0:
            raise ConfigError(
                f"fast data path: switch_interval must be > 0 seconds or None, got {switch_interval}"
            )
        self.switch_interval = switch_interval
        self.batch_size = int(getattr(self.batch_sampler, "batch_size", None) or batch_size or 1)
        self.num_threads = int(num_threads or min(8, os.cpu_count() or 1))
        self.prefetch = max(1, int(prefetch))
        self.channels_last = channels_last
        self.out_dtype = out_dtype
        self._epoch = 0
        # images decoded, by decoder ("pillow")
        self.decode_counts: Counter = Counter()

    def __len__(self) -> int:
        return len(self.batch_sampler)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if self.generator is not None:
            seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.generator).item())
        else:
            seed = self.seed + self._epoch
        self._epoch += 1
        pipeline = HostPipeline(self, seed)
        return _EpochIterator(pipeline, self.switch_interval)

    # -- one batch, in two stages run by two background threads ---------------------------------


class _EpochIterator:
    """What ``iter(loader)`` returns: takes the batches a
    :class:`~dmlbench.data.fast.host.HostPipeline` queues, and makes the consumer's CUDA stream
    wait for each. The pipeline's threads do not refer to this object, so an iterator dropped
    before its end is collected, and its ``__del__`` stops them (and any worker processes)."""

    def __init__(self, pipeline: Any, switch_interval: float | None = None) -> None:
        self.pipeline = pipeline
        self.finished = False
        self.holds_switch_interval = switch_interval is not None
        if switch_interval is not None:
            SwitchInterval.hold(switch_interval)

    def _finish(self) -> None:
        self.finished = True
        if self.holds_switch_interval:
            self.holds_switch_interval = False
            SwitchInterval.release()

    def __iter__(self) -> _EpochIterator:
        return self

    def __next__(self) -> tuple[Tensor, Tensor]:
        if self.finished:
            raise StopIteration
        item = self.pipeline.queue.get()
        if item[0] == "done":
            self._finish()
            for thread in self.pipeline.threads:
                thread.join()
            raise StopIteration
        if item[0] == "error":
            self.close()
            raise item[1]
        _, images, labels, event = item
        if event is not None:
            consumer = torch.cuda.current_stream(self.pipeline.device)
            consumer.wait_event(event)
            images.record_stream(consumer)
        return images, labels

    def close(self) -> None:
        """Stop the background threads (called when the consumer stops early)."""
        self._finish()
        pipeline = self.pipeline
        pipeline.stop.set()
        for pending in (pipeline.queue, getattr(pipeline, "decoded", None)):
            while pending is not None:
                try:
                    pending.get_nowait()
                except queue.Empty:
                    break
        for thread in pipeline.threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30)

    def __del__(self) -> None:
        if not getattr(self, "finished", True):
            self.pipeline.stop.set()
            self._finish()


def fast_loader_available(dataset: Any, transform: Any = None) -> str | None:
    """None if :class:`PillowBatchLoader` can serve ``dataset``, else the reason it cannot."""
    try:
        source = ImageSource(dataset)
        AugmentationPlan.from_transform(transform if transform is not None else source.transform)
    except ConfigError as error:
        return str(error)
    return None
