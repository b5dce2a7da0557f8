"""The training step's loss values without a host-device sync per step.

Reading a CUDA tensor's value (``float(t)``, ``t.item()``, ``if torch.isfinite(t)``) waits for the
GPU to finish every queued kernel, so a per-step read keeps the GPU idle while Python prepares the
next step. :class:`LossBuffer` keeps each step's detached loss tensors on the device and reads
them all at once every ``every`` steps (one transfer), then hands the per-step floats to the log
exactly as before (the record store still gets means of 10 steps) and updates the progress bar.
A non-finite total is reported at that read, naming its step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

#: Steps between two reads of the buffered losses (= the training log's averaging window).
READ_EVERY = 10


class LossBuffer:
    """Per-step loss tensors of one epoch, read every ``every`` steps."""

    def __init__(
        self,
        on_log: Callable[[str, dict[str, float], int], None],
        bar: Any,
        epoch: int,
        every: int = READ_EVERY,
    ) -> None:
        self.on_log, self.bar, self.epoch, self.every = on_log, bar, epoch, every
        self.pending: list[tuple[int, dict[str, Tensor]]] = []
        self.running: float | None = None  # exponential moving average of the total (progress bar)

    def add(self, losses: dict[str, Tensor], global_step: int) -> None:
        self.pending.append((global_step, {name: value.detach() for name, value in losses.items()}))
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        """Read the pending values (one device-to-host copy), check them, log them."""
        if not self.pending:
            return
        names = list(self.pending[0][1])
        table = (
            torch.stack(
                [torch.stack([values[n].float().reshape(()) for n in names]) for _, values in self.pending]
            )
            .cpu()
            .tolist()
        )
        pending, self.pending = self.pending, []
        for (step, _), row in zip(pending, table):
            total = sum(row)
            if not torch.isfinite(torch.tensor(total)):
                raise FloatingPointError(
                    f"loss became {total} at epoch {self.epoch} (step {step}); lower the learning rate or add "
                    "gradient clipping (gradient_clippers: {<part>_grad_clipper: {max_norm: 10}})"
                )
            self.running = total if self.running is None else 0.9 * self.running + 0.1 * total
            self.on_log("train", dict(zip(names, row)), step)
        self.bar.set_postfix(loss=f"{self.running:.4f}", refresh=False)  # shown with the next advance()
