"""Where a fold's training values go: TensorBoard (``<scheme>/tensorboard``) and the record store.

The trainer calls the log with ``("train", {loss name: value}, step)`` every iteration and
``("val", {metric: value}, epoch)`` after each validation. Training values are averaged over
``TRAIN_LOG_EVERY`` iterations before they are written; validation values are written as they come.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmlbench.records.store import RecordStore

#: Training values are written as the mean of this many iterations.
TRAIN_LOG_EVERY = 10


class TrainingLog:
    """The trainer's ``on_log`` callback for one fold (close it when training ends)."""

    def __init__(self, scheme: str, tensorboard_dir: Path, store: RecordStore) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.scheme = scheme
        self.store = store
        self.tensorboard = SummaryWriter(log_dir=str(tensorboard_dir))
        self.pending: dict[str, list[float]] = {}

    def __call__(self, group: str, values: dict[str, float], step: int) -> None:
        if group == "val":
            for name, value in values.items():
                self.tensorboard.add_scalar(f"val/{name}", value, step)
            self.tensorboard.flush()
            return
        for name, value in values.items():
            self.pending.setdefault(name, []).append(value)
        if (step + 1) % TRAIN_LOG_EVERY == 0:
            means = {name: float(np.mean(v)) for name, v in self.pending.items()}
            for name, value in means.items():
                self.tensorboard.add_scalar(f"train/{name}", value, step)
            self.store.add_training_values(self.scheme, step, means)
            self.pending.clear()

    def close(self) -> None:
        self.tensorboard.close()
