"""Under 2 gloo processes a plugin that adds samples sees the whole global batch (the labels a
single process would see, in the same order), with random draws identical on both ranks."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pytorch_metric_learning.losses import ContrastiveLoss
from torch import nn

from dmlbench.training import distributed
from dmlbench.training.components import build_optimization
from dmlbench.training.plugins import TrainingPlugin
from dmlbench.training.trainer import Trainer, TrainerSettings

BATCH, STEPS = 8, 3


class AddNoisySamples(TrainingPlugin):
    """Records the labels it sees and adds one random sample per step (a DAS-like plugin)."""

    def __init__(self) -> None:
        self.seen: list[list[int]] = []
        self.draws: list[float] = []

    def loss_inputs(self, inputs, context):
        self.seen.append(inputs.labels.tolist())
        noise = torch.randn(1, inputs.embeddings.shape[1])
        self.draws.append(float(noise.sum()))
        return inputs.add_samples(inputs.embeddings[:1] + noise, inputs.labels[:1])


def global_order(epoch: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(epoch)
    order = torch.randperm(32, generator=generator).tolist()
    return [[index % 4 for index in order[BATCH * i : BATCH * (i + 1)]] for i in range(STEPS)]


def worker(rank: int, port: int, folder: str, queue) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    distributed.setup(torch.device("cpu"))
    torch.manual_seed(0)
    models = {"trunk": nn.Linear(6, 5), "embedder": nn.Linear(5, 3)}
    parts = build_optimization(
        models,
        {"optimizers": {"trunk_optimizer": {"SGD": {"lr": 0.1}}, "embedder_optimizer": {"SGD": {"lr": 0.1}}}},
    )
    data = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(32) % 4

    def loader_factory(epoch: int):
        sampler = torch.utils.data.RandomSampler(range(32), generator=torch.Generator().manual_seed(epoch))
        return torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(data, labels), **distributed.loader_batching(sampler, BATCH)
        )

    plugin = AddNoisySamples()
    settings = TrainerSettings(
        num_epochs=1,
        iterations_per_epoch=STEPS,
        save_interval=1,
        patience=10,
        device=torch.device("cpu"),
        seed=3,
    )
    trainer = Trainer(
        models,
        {"metric_loss": ContrastiveLoss()},
        {},
        [plugin],
        parts,
        loader_factory,
        lambda m, e: {},
        settings,
        os.path.join(folder, "checkpoints"),
    )
    distributed.attach(trainer)
    trainer._train_epoch(1)
    queue.put(
        (
            rank,
            plugin.seen,
            plugin.draws,
            [p.detach().flatten().tolist() for p in models["trunk"].parameters()],
        )
    )
    dist.barrier()
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.multiprocess
def test_plugin_sees_the_global_batch(tmp_path):
    context = mp.get_context("spawn")
    queue = context.Queue()
    port = free_port()
    processes = [context.Process(target=worker, args=(rank, port, str(tmp_path), queue)) for rank in range(2)]
    for process in processes:
        process.start()
    results = dict((r[0], r[1:]) for r in (queue.get(timeout=120) for _ in processes))
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    (seen0, draws0, weights0), (seen1, draws1, weights1) = results[0], results[1]
    assert seen0 == seen1 == global_order(1)  # the whole batch, in the single process's order
    assert draws0 == draws1  # the same random sample added on both ranks
    assert weights0 == weights1  # identical updates
