"""The fast path's pipeline: decoding and geometric augmentation on CPU cores,
only the uint8 result and its normalisation on the device.

Each batch is split into tasks of a few images (``images_per_task``). A task is done by a
DataLoader worker process (``decode_workers > 0``), or by a thread of this process
(``decode_workers=0``): it decodes its images with Pillow (libjpeg-turbo), draws the transform's
random parameters for them from a generator seeded by ``(epoch seed, batch number, task
number)`` (so the result does not depend on which worker ran the task, nor on how many there
are), applies the geometric steps with Pillow as torchvision does
(:mod:`dmlbench.data.fast.pil_augment`) and returns
``uint8 [n, h, w, 3]``. A staging thread of this process gathers a batch's tasks, copies them to
the device (pinned, on a side stream) and applies the colour map there (ToTensor, Normalize,
ToBGR255), giving a channels-last ``[B, 3, h, w]`` tensor.

Why: on one H200 an earlier GPU-decoding mode (nvjpeg + resampling on the GPU, since removed) fed a ResNet50 step only
57-61% of its own rate although it made 6000 images/s alone and added just ~7 ms of GPU work per
step: its threads and the training loop compete for the interpreter lock. Here the Python work
runs in other processes; the staging thread does a few calls per batch
(``bench/results/train_throughput_h200.md``).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from dmlbench.data.fast.pil_augment import apply_steps, image_steps
from dmlbench.data.fast.plan import AugmentationPlan, ColorMap


class HostTask(NamedTuple):
    """Images ``indices`` (positions in the loader's data set) of batch ``batch``, part ``part`` of
    ``parts``; ``seed`` seeds their random augmentation parameters."""

    batch: int
    part: int
    parts: int
    indices: tuple[int, ...]
    seed: int


def task_seed(epoch_seed: int, batch: int, part: int) -> int:
    """A 63-bit seed from ``(epoch_seed, batch, part)`` (numpy's SeedSequence hashing)."""
    state = np.random.SeedSequence([int(epoch_seed) % 2**64, int(batch), int(part)]).generate_state(
        1, np.uint64
    )
    return int(state[0] >> np.uint64(1))


def split_batch(indices: Sequence[int], images_per_task: int) -> list[list[int]]:
    """Consecutive groups of at most ``images_per_task`` indices, as even as possible."""
    count = len(indices)
    parts = max(1, -(-count // max(1, images_per_task)))
    bounds = [round(k * count / parts) for k in range(parts + 1)]
    return [list(indices[bounds[k] : bounds[k + 1]]) for k in range(parts)]


class TaskList:
    """The tasks of one epoch, in order (a lazy iterable, usable as a DataLoader ``sampler``)."""

    def __init__(self, batch_sampler: Iterable[Sequence[int]], images_per_task: int, epoch_seed: int) -> None:
        self.batch_sampler = batch_sampler
        self.images_per_task = images_per_task
        self.epoch_seed = epoch_seed

    def __iter__(self) -> Iterator[HostTask]:
        for batch, indices in enumerate(self.batch_sampler):
            parts = split_batch([int(i) for i in indices], self.images_per_task)
            for part, group in enumerate(parts):
                yield HostTask(batch, part, len(parts), tuple(group), task_seed(self.epoch_seed, batch, part))


def prepare_group(
    load_image: Callable[[int], Any],
    plan: AugmentationPlan,
    indices: Sequence[int],
    seed: int,
    resize_within_crop: bool = False,
) -> Tensor:
    """``uint8 [n, h, w, 3]``: images ``indices`` (PIL RGB from ``load_image``) after the plan's
    geometric steps, with parameters drawn from ``torch.Generator().manual_seed(seed)``."""
    images = [load_image(int(i)) for i in indices]
    params = plan.sample(
        [im.height for im in images], [im.width for im in images], torch.Generator().manual_seed(seed)
    )
    out_h, out_w = plan.output_size
    pixels = torch.empty((len(images), out_h, out_w, 3), dtype=torch.uint8)
    array = pixels.numpy()
    for position, image in enumerate(images):
        result = apply_steps(image, image_steps(params, position), resize_within_crop)
        if result.size != (out_w, out_h):  # the plan guarantees a fixed size; this would be a bug
            raise RuntimeError(
                f"fast data path: an augmented image is {result.size}, expected {(out_w, out_h)}"
            )
        array[position] = np.asarray(result)
    return pixels


class HostTaskDataset(torch.utils.data.Dataset):
    """What a worker process runs: ``dataset[task] = (task, prepare_group(...))``."""

    def __init__(
        self, load_image: Callable[[int], Any], plan: AugmentationPlan, resize_within_crop: bool
    ) -> None:
        self.load_image = load_image
        self.plan = plan
        self.resize_within_crop = resize_within_crop

    def __getitem__(self, task: HostTask) -> tuple[HostTask, Tensor]:
        return task, prepare_group(
            self.load_image, self.plan, task.indices, task.seed, self.resize_within_crop
        )


def _as_is(item: Any) -> Any:
    return item


class ProcessProducer:
    """Tasks done by ``workers`` DataLoader worker processes, results in task order."""

    def __init__(
        self, work: HostTaskDataset, tasks: TaskList, workers: int, tasks_ahead: int, seed: int
    ) -> None:
        loader = torch.utils.data.DataLoader(
            work,
            batch_size=None,
            sampler=tasks,
            num_workers=workers,
            collate_fn=_as_is,
            prefetch_factor=max(2, -(-tasks_ahead // workers)),
            generator=torch.Generator().manual_seed(seed % 2**63),  # leaves the global RNG alone
        )
        self.iterator: Any = iter(loader)

    def __iter__(self) -> Iterator[tuple[HostTask, Tensor]]:
        return self.iterator

    def close(self) -> None:
        shutdown = getattr(self.iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        self.iterator = iter(())


class ThreadProducer:
    """Tasks done by ``threads`` threads of this process (Pillow releases the interpreter lock
    while it decodes and resamples), results in task order."""

    def __init__(self, work: HostTaskDataset, tasks: TaskList, threads: int, tasks_ahead: int) -> None:
        self.work = work
        self.tasks = iter(tasks)
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="dmlbench-host")
        self.pending: deque[Future] = deque()
        self.tasks_ahead = max(1, tasks_ahead)

    def _fill(self) -> None:
        while len(self.pending) < self.tasks_ahead:
            task = next(self.tasks, None)
            if task is None:
                return
            self.pending.append(self.pool.submit(self.work.__getitem__, task))

    def __iter__(self) -> Iterator[tuple[HostTask, Tensor]]:
        self._fill()
        while self.pending:
            result = self.pending.popleft().result()
            self._fill()
            yield result

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()


class Normaliser:
    """``uint8 [B, h, w, 3]`` -> ``[B, 3, h, w]`` through a :class:`ColorMap`
    (``out_c = pixel_{perm[c]} * mul[c] + add[c]``), its constants kept on the device."""

    def __init__(
        self, color: ColorMap, device: torch.device, out_dtype: torch.dtype, channels_last: bool
    ) -> None:
        self.perm = list(color.perm) if tuple(color.perm) != (0, 1, 2) else None
        self.mul = torch.tensor(color.mul, dtype=torch.float32).view(1, 3, 1, 1).to(device)
        self.add = torch.tensor(color.add, dtype=torch.float32).view(1, 3, 1, 1).to(device)
        self.out_dtype = out_dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, pixels: Tensor) -> Tensor:
        channels_first = pixels.permute(0, 3, 1, 2)  # a channels-last view, no copy
        if self.perm is not None:
            channels_first = channels_first[:, self.perm]
        out = torch.addcmul(self.add, channels_first.float(), self.mul).to(self.out_dtype)
        return out.contiguous(memory_format=self.memory_format)


class HostPipeline:
    """One epoch of batches: a producer (processes or threads) and a
    staging thread that fills ``self.queue`` with ``("batch", images, labels, event)``, then
    ``("done",)`` or ``("error", exception)``. Holds no reference to the consumer's iterator, so
    dropping that iterator (whose ``__del__`` sets ``stop``) ends the threads and the workers."""

    def __init__(self, loader: Any, seed: int) -> None:
        self.device: torch.device = loader.device
        self.labels: np.ndarray = loader.source.labels
        self.normalise = Normaliser(loader.plan.color, self.device, loader.out_dtype, loader.channels_last)
        self.counts = loader.decode_counts
        self.queue: queue.Queue = queue.Queue(maxsize=loader.prefetch)
        self.stop = threading.Event()
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        work = HostTaskDataset(loader.source.load_pil, loader.plan, loader.resize_within_crop)
        tasks = TaskList(loader.batch_sampler, loader.images_per_task, seed)
        tasks_per_batch = -(-(loader.batch_size or 1) // loader.images_per_task)
        ahead = (loader.prefetch + 1) * tasks_per_batch
        if loader.decode_workers > 0:
            self.producer: ProcessProducer | ThreadProducer = ProcessProducer(
                work, tasks, loader.decode_workers, ahead, seed
            )
        else:
            self.producer = ThreadProducer(work, tasks, loader.num_threads, ahead)
        self.threads = [threading.Thread(target=self._run, name="dmlbench-fast-stage", daemon=True)]
        self.threads[0].start()

    def _put(self, item: tuple) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            parts: list[tuple[HostTask, Tensor]] = []
            for task, pixels in self.producer:
                if self.stop.is_set():
                    return
                parts.append((task, pixels))
                if len(parts) < task.parts:
                    continue
                if [t.part for t, _ in parts] != list(range(task.parts)) or {t.batch for t, _ in parts} != {
                    task.batch
                }:
                    raise RuntimeError(
                        "fast data path: tasks arrived out of order"
                    )  # a bug, not a user error
                images, labels, event = self._stage(parts)
                parts = []
                if not self._put(("batch", images, labels, event)):
                    return
            self._put(("done",))
        except BaseException as error:  # handed on to the consumer, which re-raises it
            self._put(("error", error))
        finally:
            self.producer.close()

    def _stage(self, parts: list[tuple[HostTask, Tensor]]) -> tuple[Tensor, Tensor, Any]:
        """Concatenate, upload and normalise one batch (on the side stream on CUDA)."""
        indices = np.asarray([i for task, _ in parts for i in task.indices], dtype=np.int64)
        labels = torch.as_tensor(self.labels[indices])
        pieces = [pixels for _, pixels in parts]
        self.counts["pillow"] += len(indices)
        if self.stream is None:
            return self.normalise(torch.cat(pieces)), labels, None
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            on_device = torch.empty(
                (len(indices), *pieces[0].shape[1:]), dtype=torch.uint8, device=self.device
            )
            start = 0
            for piece in pieces:
                on_device[start : start + len(piece)].copy_(piece.pin_memory(), non_blocking=True)
                start += len(piece)
            images = self.normalise(on_device)
            event = torch.cuda.Event()
            event.record(self.stream)
        return images, labels.pin_memory(), event
