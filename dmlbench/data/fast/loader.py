"""A batch loader that decodes JPEGs and augments them on the device (the GPU where there is one).

Drop-in for ``torch.utils.data.DataLoader(dataset, batch_size, sampler=..., drop_last=...)`` over
a :class:`~dmlbench.data.base.RetrievalDataset` or :class:`~dmlbench.data.base.TransformedSubset`:
it yields ``(images, labels)`` batches in the sampler's order with the same labels, ``images``
already on ``device`` and normalised like the dataset's own torchvision transform.

Per batch, in background threads: reader threads load the files' bytes (a few batches ahead);
a decode thread decodes the JPEGs in one nvjpeg call (CPU: libjpeg-turbo in the reader
threads); an augment thread zero-pads the batch to its largest image, draws the transform's
random parameters on the CPU, applies the whole geometric chain (resize, crops, flip) as two
batched matrix products with Pillow's bilinear weights (:mod:`dmlbench.data.fast.resample`),
then the colour normalisation. On CUDA both stages run on side streams, so they overlap each
other and the training step; the consumer's stream waits on an event before using a batch.

Differences from the PIL path: the random parameters come from this loader's own generator
(same distributions, another random stream); a chain of two resamplings (e.g. Resize then
RandomResizedCrop) is one resampling here, so pixels differ by up to 2 levels of 255 (Pillow
rounds between the two); nvjpeg's decoding differs from libjpeg's (about 1 level on average,
more at sharp colour edges) and the GPU resamples in float16. On the CPU a single resampling
chain such as Resize + CenterCrop gives exactly the PIL path's pixels.

Speed: ``bench/results/train_throughput_h200.md``. On one H200 the loader alone produced about
6000 images/s (CUB-sized JPEGs, batch 128), but fed a ResNet50 step at only 58% of the step's
own rate; the reason is not yet established (see the notes there).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import warnings
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from dmlbench.data.base import RetrievalDataset, TransformedSubset
from dmlbench.data.fast.decode import decode_batch, read_bytes
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
        device: where images are decoded and augmented (default: CUDA when available).
        generator: a ``torch.Generator``; each epoch draws its augmentation seed from it (as the
            DataLoader draws its base seed). Without it, epoch ``e`` uses ``seed + e``.
        num_threads: threads reading files (and decoding on the CPU).
        prefetch: batches prepared ahead.
        channels_last: return images in channels-last memory format.
        out_dtype: dtype of the images (float32 like the PIL path, or bfloat16/float16).
        resample_dtype: precision of the resampling products (default float16 on CUDA; float64 on
            the CPU, where it reproduces Pillow's arithmetic exactly).
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
        self.num_threads = int(num_threads or min(8, os.cpu_count() or 1))
        self.prefetch = max(1, int(prefetch))
        self.channels_last = channels_last
        self.out_dtype = out_dtype
        self.resample_dtype = resample_dtype or (torch.float16 if self.device.type == "cuda" else torch.float64)
        self._epoch = 0
        self.decode_counts: Counter = Counter()  # images decoded by "nvjpeg" / on the "cpu", all epochs

    def __len__(self) -> int:
        return len(self.batch_sampler)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if self.generator is not None:
            seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.generator).item())
        else:
            seed = self.seed + self._epoch
        self._epoch += 1
        return _EpochIterator(self, seed)

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


class _EpochIterator:
    """One pass over the batch sampler. Reader threads load files a few batches ahead; a decode
    thread decodes each batch; an augment thread resamples and normalises it. On CUDA each
    stage has its own stream, ordered by events, so decoding batch k+1 overlaps augmenting
    batch k and both overlap the consumer's training step."""

    def __init__(self, loader: GpuJpegBatchLoader, seed: int) -> None:
        self.loader = loader
        self.generator = torch.Generator().manual_seed(seed)
        self.decoded: queue.Queue = queue.Queue(maxsize=loader.prefetch)
        self.queue: queue.Queue = queue.Queue(maxsize=loader.prefetch)
        self.stop = threading.Event()
        cuda = loader.device.type == "cuda"
        self.decode_stream = torch.cuda.Stream(loader.device) if cuda else None
        self.augment_stream = torch.cuda.Stream(loader.device) if cuda else None
        self.finished = False
        self.decode_thread = threading.Thread(target=self._decode_loop, name="dmlbench-fast-decode", daemon=True)
        self.thread = threading.Thread(target=self._augment_loop, name="dmlbench-fast-loader", daemon=True)
        self.decode_thread.start()
        self.thread.start()

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

    def __iter__(self) -> "_EpochIterator":
        return self

    def __next__(self) -> tuple[Tensor, Tensor]:
        if self.finished:
            raise StopIteration
        item = self.queue.get()
        if item[0] == "done":
            self.finished = True
            self.thread.join()
            self.decode_thread.join()
            raise StopIteration
        if item[0] == "error":
            self.finished = True
            self.close()
            raise item[1]
        _, images, labels, event = item
        if event is not None:
            consumer = torch.cuda.current_stream(self.loader.device)
            consumer.wait_event(event)
            images.record_stream(consumer)
        return images, labels

    def close(self) -> None:
        """Stop the background threads (called when the consumer stops early)."""
        self.stop.set()
        for pending in (self.queue, self.decoded):
            while True:
                try:
                    pending.get_nowait()
                except queue.Empty:
                    break
        for thread in (self.thread, self.decode_thread):
            if thread is not threading.current_thread():
                thread.join(timeout=10)

    def __del__(self) -> None:
        if not self.finished:
            self.stop.set()


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

