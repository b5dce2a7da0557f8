"""A batch loader that decodes and augments JPEGs off the training loop, and hands over
normalised batches on the device.

Drop-in for ``torch.utils.data.DataLoader(dataset, batch_size, sampler=..., drop_last=...)`` over
a :class:`~dmlbench.data.base.RetrievalDataset` or :class:`~dmlbench.data.base.TransformedSubset`:
it yields ``(images, labels)`` batches in the sampler's order with the same labels, ``images``
already on ``device`` and normalised like the dataset's own torchvision transform.

Two ways to make a batch (``decode_device``):

- ``"cpu"`` (default, :mod:`dmlbench.data.fast.host`): worker processes (or threads) decode with
  Pillow and apply the geometric steps with Pillow as the reference path does (the same pixels for
  the same random parameters with ``resize_within_crop=False``; the default ``True`` halves the
  work when a Resize precedes the crop and moves some values by up to 2 levels of 255, see
  :mod:`dmlbench.data.fast.pil_augment`); the uint8 batch is copied to the device on a side
  stream and normalised there. The GPU is left to the model.
- ``"device"``: reader threads load the files' bytes; a decode thread decodes the JPEGs on the
  device in one nvjpeg call (CPU: libjpeg-turbo); an augment thread zero-pads the batch to its
  largest image, applies the whole geometric chain (resize, crops, flip) as two batched matrix
  products with Pillow's bilinear weights (:mod:`dmlbench.data.fast.resample`), then the colour
  normalisation. On CUDA both stages run on side streams. Its decoding and resampling share the
  GPU with the training step.

Differences from the PIL path: the random parameters come from this loader's own generator
(same distributions, another random stream). ``"device"`` on CUDA: a chain of two resamplings
(e.g. Resize then RandomResizedCrop) is one resampling, so pixels differ by up to 2 levels of 255;
nvjpeg's decoding differs from libjpeg's (about 1 level on average, more at sharp colour edges)
and the GPU resamples in float16. ``"device"`` on the CPU reproduces a single resampling chain
such as Resize + CenterCrop exactly.

Speed (``bench/results/train_throughput_h200.md``; one H200, 16 CPU cores, ResNet50 at batch 128
stepping at ~4300 images/s alone): ``"cpu"`` fed it 3666 images/s from the pre-resized cache
(85% of the step alone) and 2771 from ~460x387 JPEGs (65%, bound by the cores' Pillow work);
``"device"`` 2437-2605 (57-61%): its GPU work is small, but its threads hold up the training
loop, which shares their interpreter lock.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import warnings
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from dmlbench.data.base import RetrievalDataset, TransformedSubset, load_rgb_image
from dmlbench.data.fast.decode import decode_batch, read_bytes
from dmlbench.data.fast.host import HostPipeline
from dmlbench.data.fast.plan import AugmentationPlan
from dmlbench.data.fast.resample import apply_resampling
from dmlbench.errors import ConfigError

# pad_images uses (strided) nested tensors only to pad a list of images in one go.
warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors is in prototype stage")


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
        # A subclass that crops or edits images in load_image cannot be read as raw file bytes.
        self.uses_load_image = type(base).load_image is not RetrievalDataset.load_image

    def __len__(self) -> int:
        return len(self.base_indices)

    def path(self, index: int) -> str:
        return self.base.paths[int(self.base_indices[index])]

    def read(self, index: int) -> Tensor:
        """Encoded bytes (``uint8 [n]``), or already-decoded ``uint8 [3, h, w]`` via ``load_image``."""
        if self.uses_load_image:
            image = np.asarray(self.base.load_image(int(self.base_indices[index])).convert("RGB"))
            return torch.from_numpy(image.copy()).permute(2, 0, 1).contiguous()
        return read_bytes(self.path(index))

    def load_pil(self, index: int) -> Any:
        """Sample ``index`` as a PIL RGB image, as the reference path loads it."""
        base_index = int(self.base_indices[index])
        if self.uses_load_image:
            return self.base.load_image(base_index).convert("RGB")
        return load_rgb_image(self.base.paths[base_index])


def default_decode_workers() -> int:
    """Worker processes for ``decode_device="cpu"``: the usable cores less two (the training
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


def _decode_device(name: str, device: torch.device) -> str:
    """``"cpu"`` or ``"device"`` (``"cuda"``: the latter, on a CUDA ``device``)."""
    if name == "cuda":
        if device.type != "cuda":
            raise ConfigError(f"fast data path: decode_device='cuda' needs a CUDA device, got device={device}")
        return "device"
    if name not in ("cpu", "device"):
        raise ConfigError(f"fast data path: decode_device must be 'cpu', 'device' or 'cuda', got {name!r}")
    return name


def _batches(
    length: int, batch_size: int | None, sampler: Iterable[int] | None, batch_sampler: Iterable[Sequence[int]] | None,
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


class GpuJpegBatchLoader:
    """Batches ``(images [B, 3, h, w] on device, labels int64 [B] on the CPU, pinned for CUDA)``.

    Args:
        dataset: a RetrievalDataset or TransformedSubset; its ``transform`` (a torchvision
            ``Compose`` of the steps :class:`AugmentationPlan` supports) defines the output.
        batch_size, sampler, batch_sampler, drop_last: as for ``torch.utils.data.DataLoader``.
        transform: use this ``Compose`` instead of the dataset's.
        device: where the batches are delivered (default: CUDA when available).
        generator: a ``torch.Generator``; each epoch draws its augmentation seed from it (as the
            DataLoader draws its base seed). Without it, epoch ``e`` uses ``seed + e``.
        decode_device: ``"cpu"`` (default): Pillow decodes and augments on CPU cores, the device
            only normalises; ``"device"`` (or ``"cuda"`` with a CUDA ``device``): nvjpeg decoding
            and matrix resampling on ``device``. The module docstring compares them.
        decode_workers: ``decode_device="cpu"``: worker processes (0: ``num_threads`` threads
            of this process); default :func:`default_decode_workers`.
        resize_within_crop: ``decode_device="cpu"``: a Resize followed by a crop resizes only
            what the crop keeps (the same filter; up to 2 levels of 255 from Pillow's rounding;
            False: the reference's operations, bit for bit).
        images_per_task: ``decode_device="cpu"``: images per worker task (a batch is split into
            tasks; changing it changes the random stream).
        switch_interval: while an epoch runs, ``sys.setswitchinterval(switch_interval)`` (the
            previous value comes back when the last running epoch ends); the training loop then
            waits less for the interpreter lock after each PyTorch call. None: leave it alone.
        num_threads: threads reading files (``"device"``), or doing the tasks when
            ``decode_workers=0``.
        prefetch: batches prepared ahead.
        channels_last: return images in channels-last memory format.
        out_dtype: dtype of the images (float32 like the PIL path, or bfloat16/float16).
        resample_dtype: ``"device"``: precision of the resampling products (default float16 on
            CUDA; float64 on the CPU, where it reproduces Pillow's arithmetic exactly).
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
        decode_device: str = "cpu",
        decode_workers: int | None = None,
        resize_within_crop: bool = True,
        images_per_task: int = 32,
        switch_interval: float | None = 0.0005,
        num_threads: int | None = None,
        prefetch: int = 2,
        channels_last: bool = False,
        out_dtype: torch.dtype = torch.float32,
        resample_dtype: torch.dtype | None = None,
    ) -> None:
        self.source = ImageSource(dataset)
        chosen = transform if transform is not None else self.source.transform
        if chosen is None:
            raise ConfigError("fast data path: the dataset has no transform; pass transform=Compose([...])")
        self.plan = AugmentationPlan.from_transform(chosen)
        self.batch_sampler = _batches(len(self.source), batch_size, sampler, batch_sampler, drop_last)
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.generator = generator
        self.seed = int(seed)
        self.decode_device = _decode_device(decode_device, self.device)
        self.decode_workers = default_decode_workers() if decode_workers is None else max(0, int(decode_workers))
        self.resize_within_crop = bool(resize_within_crop)
        if images_per_task < 1:
            raise ConfigError(f"fast data path: images_per_task must be >= 1, got {images_per_task}")
        self.images_per_task = int(images_per_task)
        if switch_interval is not None and switch_interval <= 0:
            raise ConfigError(f"fast data path: switch_interval must be > 0 seconds or None, got {switch_interval}")
        self.switch_interval = switch_interval
        self.batch_size = int(getattr(self.batch_sampler, "batch_size", None) or batch_size or 1)
        self.num_threads = int(num_threads or min(8, os.cpu_count() or 1))
        self.prefetch = max(1, int(prefetch))
        self.channels_last = channels_last
        self.out_dtype = out_dtype
        self.resample_dtype = resample_dtype or (torch.float16 if self.device.type == "cuda" else torch.float64)
        self._epoch = 0
        # images decoded by "nvjpeg" / libjpeg on the "cpu" (decode_device="device") or by "pillow"
        self.decode_counts: Counter = Counter()

    def __len__(self) -> int:
        return len(self.batch_sampler)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if self.generator is not None:
            seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.generator).item())
        else:
            seed = self.seed + self._epoch
        self._epoch += 1
        pipeline = HostPipeline(self, seed) if self.decode_device == "cpu" else _DevicePipeline(self, seed)
        return _EpochIterator(pipeline, self.switch_interval)

    # -- one batch, in two stages run by two background threads ---------------------------------

    def decode(self, indices: Sequence[int], encoded: Sequence[Tensor], pool: ThreadPoolExecutor | None) -> list[Tensor]:
        """Stage 1: ``uint8 [3, h, w]`` images on the device (the current stream)."""
        images: list[Tensor] = [e.to(self.device, non_blocking=True) if e.dim() == 3 else e for e in encoded]
        raw_positions = [i for i, e in enumerate(encoded) if e.dim() == 1]
        if raw_positions:
            raw = [encoded[i] for i in raw_positions]
            paths = [self.source.path(indices[i]) for i in raw_positions]
            for position, image in zip(raw_positions, decode_batch(raw, paths, self.device, pool, self.decode_counts)):
                images[position] = image
        return images

    def augment(self, indices: Sequence[int], images: Sequence[Tensor], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Stage 2: resize/crop/flip and normalise decoded images (the current stream)."""
        heights = [int(im.shape[1]) for im in images]
        widths = [int(im.shape[2]) for im in images]
        params = self.plan.sample(heights, widths, generator)
        padded_size = (max(heights), max(widths))
        batch = pad_images(images, padded_size, self.resample_dtype)
        rows, cols = self.plan.matrices(params, heights, widths, padded_size, self.device)
        pixels = apply_resampling(batch, rows, cols, self.resample_dtype)
        out = self.plan.color.apply(pixels, self.out_dtype)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        labels = torch.as_tensor(self.source.labels[np.asarray(indices, dtype=np.int64)])
        if self.device.type == "cuda":
            labels = labels.pin_memory()  # as DataLoader(pin_memory=True): the trainer's copy stays asynchronous
        return out, labels

    def make_batch(
        self, indices: Sequence[int], encoded: Sequence[Tensor], generator: torch.Generator, pool: ThreadPoolExecutor | None
    ) -> tuple[Tensor, Tensor]:
        """Both stages, in the calling thread."""
        return self.augment(indices, self.decode(indices, encoded, pool), generator)


def pad_images(images: Sequence[Tensor], padded_size: tuple[int, int], dtype: torch.dtype) -> Tensor:
    """``[B, 3, H, W]`` in ``dtype``: each image at the top-left corner, zeros elsewhere."""
    if images[0].is_cuda:
        try:  # a few kernels instead of one copy per image
            nested = torch.nested.nested_tensor(list(images), dtype=dtype)
            return nested.to_padded_tensor(0.0, output_size=(len(images), 3, *padded_size))
        except (RuntimeError, NotImplementedError, TypeError):
            pass
    batch = torch.zeros((len(images), 3, *padded_size), dtype=dtype, device=images[0].device)
    for position, image in enumerate(images):
        batch[position, :, : image.shape[1], : image.shape[2]].copy_(image)
    return batch


def _read_chunk(source: ImageSource, indices: Sequence[int]) -> list[Tensor]:
    return [source.read(i) for i in indices]


class _DevicePipeline:
    """``decode_device="device"``: one pass over the batch sampler. Reader threads load files a
    few batches ahead; a decode thread decodes each batch; an augment thread resamples and
    normalises it into ``self.queue`` (``("batch", images, labels, event)``, then ``("done",)`` or
    ``("error", exception)``). On CUDA each stage has its own stream, ordered by events, so
    decoding batch k+1 overlaps augmenting batch k and both overlap the consumer's training step.
    Holds no reference to the consumer's iterator (see :class:`_EpochIterator`)."""

    def __init__(self, loader: GpuJpegBatchLoader, seed: int) -> None:
        self.loader = loader
        self.device = loader.device
        self.generator = torch.Generator().manual_seed(seed)
        self.decoded: queue.Queue = queue.Queue(maxsize=loader.prefetch)
        self.queue: queue.Queue = queue.Queue(maxsize=loader.prefetch)
        self.stop = threading.Event()
        cuda = loader.device.type == "cuda"
        self.decode_stream = torch.cuda.Stream(loader.device) if cuda else None
        self.augment_stream = torch.cuda.Stream(loader.device) if cuda else None
        self.threads = [
            threading.Thread(target=self._decode_loop, name="dmlbench-fast-decode", daemon=True),
            threading.Thread(target=self._augment_loop, name="dmlbench-fast-loader", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _put(self, target: queue.Queue, item: tuple) -> bool:
        while not self.stop.is_set():
            try:
                target.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, source: queue.Queue) -> tuple | None:
        while not self.stop.is_set():
            try:
                return source.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def _on_stream(self, stream: Any) -> contextlib.AbstractContextManager:
        if stream is None:
            return contextlib.nullcontext()
        return _CudaStreamContext(self.loader.device, stream)

    def _record(self, stream: Any) -> Any:
        if stream is None:
            return None
        event = torch.cuda.Event()
        event.record(stream)
        return event

    def _decode_loop(self) -> None:
        loader = self.loader
        try:
            with ThreadPoolExecutor(loader.num_threads, thread_name_prefix="dmlbench-read") as pool:
                pending: deque[tuple[list[int], list[Future]]] = deque()
                batches = iter(loader.batch_sampler)

                def submit_next() -> None:
                    indices = next(batches, None)
                    if indices is not None:
                        indices = [int(i) for i in indices]
                        chunk = max(1, -(-len(indices) // loader.num_threads))  # files per read task
                        parts = [indices[start : start + chunk] for start in range(0, len(indices), chunk)]
                        pending.append((indices, [pool.submit(_read_chunk, loader.source, part) for part in parts]))

                try:
                    for _ in range(loader.prefetch + 1):
                        submit_next()
                    while pending and not self.stop.is_set():
                        indices, futures = pending.popleft()
                        submit_next()
                        encoded = [data for future in futures for data in future.result()]
                        with self._on_stream(self.decode_stream):
                            images = loader.decode(indices, encoded, pool)
                            event = self._record(self.decode_stream)
                        if not self._put(self.decoded, ("batch", indices, images, event)):
                            return
                finally:
                    for _, futures in pending:
                        for future in futures:
                            future.cancel()
            self._put(self.decoded, ("done",))
        except BaseException as error:  # handed on to the consumer, which re-raises it
            self._put(self.decoded, ("error", error))

    def _augment_loop(self) -> None:
        try:
            while True:
                item = self._get(self.decoded)
                if item is None:
                    return
                if item[0] != "batch":
                    self._put(self.queue, item)
                    return
                _, indices, images, decoded_event = item
                with self._on_stream(self.augment_stream):
                    if decoded_event is not None:
                        self.augment_stream.wait_event(decoded_event)
                        for image in images:
                            image.record_stream(self.augment_stream)
                    out, labels = self.loader.augment(indices, images, self.generator)
                    event = self._record(self.augment_stream)
                del images
                if not self._put(self.queue, ("batch", out, labels, event)):
                    return
        except BaseException as error:
            self._put(self.queue, ("error", error))


class _EpochIterator:
    """What ``iter(loader)`` returns: takes the batches a pipeline (:class:`_DevicePipeline` or
    :class:`~dmlbench.data.fast.host.HostPipeline`) queues, and makes the consumer's CUDA stream
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

    def __iter__(self) -> "_EpochIterator":
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


class _CudaStreamContext:
    """``torch.cuda.device(d)`` and ``torch.cuda.stream(s)`` together."""

    def __init__(self, device: torch.device, stream: Any) -> None:
        self.device_context = torch.cuda.device(device)
        self.stream_context = torch.cuda.stream(stream)

    def __enter__(self) -> None:
        self.device_context.__enter__()
        self.stream_context.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.stream_context.__exit__(*exc)
        self.device_context.__exit__(*exc)


def fast_loader_available(dataset: Any, transform: Any = None) -> str | None:
    """None if :class:`GpuJpegBatchLoader` can serve ``dataset``, else the reason it cannot."""
    try:
        source = ImageSource(dataset)
        AugmentationPlan.from_transform(transform if transform is not None else source.transform)
    except ConfigError as error:
        return str(error)
    return None

