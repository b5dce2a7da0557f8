"""Data-parallel training of one fold over the processes ``torchrun --nproc_per_node N`` starts.

Scheme (docs/distributed.md):

* Every rank builds the same global batch order (same seeds) and loads only its slice: with
  global batch B and W ranks, rank r takes positions ``[r B/W, (r+1) B/W)`` of every batch
  (:class:`RankSlice`). B must be divisible by W.
* Each rank runs the trunk and embedder on its slice; the slices are gathered in rank order
  (:func:`gather_with_grad`), so the miners, the losses and every plugin see the whole global
  batch, exactly as a single process would. Every rank then computes the same loss L.
* Gradients. Rank r holds local outputs e_r; the gathered tensor's gradient g = dL/de is the same
  on every rank, so the backward of the gather returns ``W * g_r`` (the sum over ranks of the
  identical g_r, i.e. the adjoint of all-gather, without communication). After backward every
  parameter's gradient is averaged over ranks (one flattened all-reduce, as DDP does):
  ``(1/W) sum_r J_r^T W g_r = sum_r J_r^T g_r = dL/dtheta`` -- the single-process gradient.
  Parameters used identically on every rank (loss parameters, plugin modules) have equal
  gradients everywhere, and their average is that gradient.
* The loss phase runs under a random state derived from (fold seed, epoch, step) on every rank,
  so plugins that draw random numbers draw the same ones everywhere.
* Buffers (BatchNorm running statistics) are broadcast from rank 0 after each step (DDP's
  ``broadcast_buffers``). BatchNorm in train mode normalises with the rank's slice statistics.
* Evaluation: each rank embeds a contiguous shard, the shards are gathered, rank 0 scores and
  broadcasts the scores. Only rank 0 writes files (records, checkpoints, reports).

Started without ``WORLD_SIZE > 1`` in the environment, everything here is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Sampler

from dmlbench.errors import ConfigError

T = TypeVar("T")


# ---------------------------------------------------------------------------- process group
def launched() -> bool:
    """Started by torchrun (or another launcher) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank (from the process group, else torchrun's ``RANK``, else 0)."""
    return dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Rank 0, or not distributed: the process that writes files and prints."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR/PORT): backend nccl for CUDA, gloo for CPU. Returns the rank's device (CUDA:
    ``cuda:LOCAL_RANK``). Ranks > 0 print nothing (stdout to /dev/null, no progress bars)."""
    if not launched():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.get_rank() != 0:  # no progress bars either (dmlbench.progress reads RANK)
        sys.stdout = open(os.devnull, "w")
    return device


def barrier() -> None:
    if active():
        dist.barrier()


def shutdown(finished: bool) -> None:
    """Leave the process group at the end of a command. When every rank finished, first wait
    for all (rank 0 may still be writing the report): a process that exits while its process
    group's threads are alive can abort ("terminate called without an active exception") and
    make torchrun stop the others. After an error, leave at once."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if finished and dist.get_world_size() > 1:
            dist.barrier()
    except (RuntimeError, dist.DistBackendError):  # another rank failed: it reports why
        pass
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------- batches
class RankSlice(Sampler[list[int]]):
    """Index batches: this rank's slice of each global batch of ``batch_size`` drawn from
    ``sampler`` (every rank iterates the same sampler with the same seed)."""

    def __init__(self, sampler: Iterable[int], batch_size: int, rank: int, world: int) -> None:
        if batch_size % world:
            raise ConfigError(
                f"batch_size {batch_size} is not divisible by the {world} processes "
                "(torchrun --nproc_per_node, or slurm: {processes: N}); "
                f"use a multiple of {world}"
            )
        self.sampler, self.batch_size, self.rank, self.world = sampler, batch_size, rank, world
        self.local = batch_size // world

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                yield batch[self.rank * self.local : (self.rank + 1) * self.local]
                batch = []

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size  # type: ignore[arg-type]


def loader_batching(sampler: Any, batch_size: int) -> dict[str, Any]:
    """DataLoader arguments: the global batches of ``sampler`` (one process) or this rank's slices."""
    if not active():
        return {"batch_size": batch_size, "sampler": sampler, "drop_last": True}
    return {"batch_sampler": RankSlice(sampler, batch_size, rank(), world_size())}


# ---------------------------------------------------------------------------- the step
class _GatherIdenticalLoss(torch.autograd.Function):
    """All-gather whose backward assumes every rank computes the same loss of the gathered
    tensor: the adjoint (reduce-scatter of identical gradients) is ``W`` times the local slice."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        world = dist.get_world_size()
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rank, ctx.world, ctx.size = dist.get_rank(), world, tensor.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad[ctx.rank * ctx.size : (ctx.rank + 1) * ctx.size] * ctx.world


def gather_with_grad(tensor: Tensor) -> Tensor:
    """The ranks' ``tensor`` [n, ...] concatenated in rank order [W n, ...] (differentiable)."""
    if tensor.requires_grad:
        return _GatherIdenticalLoss.apply(tensor)
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def _gather_features(features: Any) -> Any:
    if isinstance(features, (tuple, list)):
        return type(features)(gather_with_grad(f) for f in features)
    return gather_with_grad(features) if isinstance(features, Tensor) else features


@contextlib.contextmanager
def synced_random_state(seed: int) -> Iterator[None]:
    """python, numpy and torch (CPU and CUDA) random states seeded with ``seed`` inside, restored after."""
    states = (
        random.getstate(),
        np.random.get_state(),
        torch.get_rng_state(),
        torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    )
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if states[3] is not None:
            torch.cuda.set_rng_state_all(states[3])


class DataParallel:
    """The distributed parts of one fold's training step (see the module docstring)."""

    def __init__(self, seed: int, modules: dict[str, torch.nn.Module]) -> None:
        from dmlbench.training.seeding import derive_seed

        self.derive_seed = derive_seed
        self.seed = seed
        self.modules = modules
        self.step_key: tuple[int, int] = (-1, 0)
        self.world = world_size()
        with torch.no_grad():  # identical start on every rank (like DDP's construction)
            for module in modules.values():
                for tensor in list(module.parameters()) + list(module.buffers()):
                    dist.broadcast(tensor.data, src=0)

    def losses(self, trainer: Any, inputs: Any) -> dict[str, Tensor]:
        """``trainer.compute_losses`` on the global batch, with a random state shared by all ranks."""
        from dataclasses import replace

        with_images = len(trainer.plugins) > 0  # only plugins look at features and images
        inputs = replace(
            inputs,
            embeddings=gather_with_grad(inputs.embeddings),
            labels=gather_with_grad(inputs.labels),
            features=_gather_features(inputs.features) if with_images else None,
            images=gather_with_grad(inputs.images) if with_images and inputs.images is not None else None,
        )
        epoch = trainer.state.epoch
        self.step_key = (epoch, self.step_key[1] + 1 if self.step_key[0] == epoch else 0)
        with synced_random_state(self.derive_seed(self.seed, "distributed-step", *self.step_key)):
            return trainer.compute_losses(inputs)

    def average_gradients(self) -> None:
        """Mean of every parameter gradient over the ranks (one flattened all-reduce), then rank 0's
        buffers everywhere."""
        grads = [p.grad for m in self.modules.values() for p in m.parameters() if p.grad is not None]
        if grads:
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.world
            offset = 0
            for grad in grads:
                grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
                offset += grad.numel()
        buffers = [b for m in self.modules.values() for b in m.buffers() if b.is_floating_point()]
        if buffers:  # integer buffers (BatchNorm's step count) advance identically everywhere
            flat = torch.cat([b.reshape(-1) for b in buffers])
            dist.broadcast(flat, src=0)
            offset = 0
            for buffer in buffers:
                buffer.copy_(flat[offset : offset + buffer.numel()].view_as(buffer))
                offset += buffer.numel()


def attach(trainer: Any) -> None:
    """Make ``trainer`` data-parallel over the process group (nothing when not distributed)."""
    if active():
        trainer.data_parallel = DataParallel(trainer.settings.seed, trainer.all_modules())


# ---------------------------------------------------------------------------- evaluation
def gather_rows(tensor: Tensor) -> Tensor:
    """Every rank's ``tensor`` [n_r, ...] (sizes may differ) concatenated in rank order."""
    if not active():
        return tensor
    device = (
        torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else tensor.device
    )
    local = tensor.to(device)
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([len(local)], device=device))
    largest = int(max(size.item() for size in sizes))
    padded = torch.zeros((largest, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: len(local)] = local
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(size.item())] for part, size in zip(parts, sizes)]).to(tensor.device)


def shard(dataset: Any) -> Any:
    """This rank's contiguous share of ``dataset`` (all of it when not distributed)."""
    if not active():
        return dataset
    bounds = np.linspace(0, len(dataset), world_size() + 1).astype(int)
    return torch.utils.data.Subset(dataset, range(bounds[rank()], bounds[rank() + 1]))


class PeerFailure(RuntimeError):
    """Raised on the other ranks when rank 0 fails in :func:`main_result` (rank 0 reports its error)."""


def main_result(compute: Callable[[], T]) -> T:
    """``compute()`` on rank 0 only, its result broadcast to every rank (an error on rank 0 is
    raised there and reported on the others)."""
    if not active():
        return compute()
    box: list[Any] = [None]
    if is_main():
        try:
            box[0] = ("ok", compute())
        except BaseException as error:
            box[0] = ("error", f"{type(error).__name__}: {error}")
            dist.broadcast_object_list(box, src=0)
            raise
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise PeerFailure(f"rank 0 failed: {value}")
    return value


class Discard:
    """Stands in for a writer (record store, training log) on ranks > 0: every call does nothing."""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Discard:
        return self
