"""DAS's memory: the frequency matrix, the per-class FIFO banks and the random generator.

Fixed-size tensors (memory does not grow with training): ``frequency`` [C, D] int64 counts,
``banks`` [C, S, D], ``pointer`` and ``filled`` [C] int64. Every random draw comes from one
``torch.Generator`` on the CPU (the same draws whatever the training device); its state is part of
:meth:`DASState.state_dict`, so a resumed run draws what the uninterrupted one would have.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dmlbench.plugins.das import functional as das


class DASState:
    """Frequency matrix, banks and generator of one DAS instance.

    Args:
        num_classes: C, training labels are 0..C-1.
        dim: D, the embedding size.
        bank_size: S, differences kept per class.
        seed: seed of the generator (re-seeded later with :meth:`reseed` if wanted).
    """

    def __init__(self, num_classes: int, dim: int, bank_size: int, seed: int = 0) -> None:
        self.num_classes = int(num_classes)
        self.dim = int(dim)
        self.bank_size = int(bank_size)
        self.frequency = torch.zeros(self.num_classes, self.dim, dtype=torch.int64)
        self.banks = torch.zeros(self.num_classes, self.bank_size, self.dim)
        self.pointer = torch.zeros(self.num_classes, dtype=torch.int64)
        self.filled = torch.zeros(self.num_classes, dtype=torch.int64)
        self.generator = torch.Generator().manual_seed(int(seed))

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def to(self, device: torch.device) -> DASState:
        """Move the tensors (not the generator, which stays on the CPU) to ``device``."""
        self.frequency = self.frequency.to(device)
        self.banks = self.banks.to(device)
        return self

    # ------------------------------------------------------------------ updates
    def observe(self, embeddings: Tensor, labels: Tensor, k: int) -> None:
        """The batch's updates, in the paper's order: frequency matrix, then banks."""
        if self.frequency.device != embeddings.device:
            self.to(embeddings.device)
        self.frequency = das.update_frequency(self.frequency, embeddings, labels, k)
        for label in torch.unique(labels).tolist():
            differences = das.same_class_differences(embeddings, labels, label)
            bank, pointer, filled = das.push_fifo(
                self.banks[label],
                int(self.pointer[label]),
                int(self.filled[label]),
                differences.to(self.banks.dtype),
            )
            self.banks[label] = bank
            self.pointer[label] = pointer
            self.filled[label] = filled

    def draw(self, num_samples: int, k: int, scale_range: tuple[float, float]) -> tuple[Tensor, Tensor]:
        """One copy's draws: DFS factors [N, K] ~ U[l, r) and bank-entry draws [N] ~ U[0, 1)."""
        low, high = scale_range
        scale = low + (high - low) * torch.rand(num_samples, k, generator=self.generator)
        entry_draw = torch.rand(num_samples, generator=self.generator)
        return scale, entry_draw

    def produce(
        self,
        embeddings: Tensor,
        labels: Tensor,
        k: int,
        scale_range: tuple[float, float],
        mts_scale: float,
        num_copies: int,
        normalize: bool,
        detach: bool,
    ) -> list[Tensor]:
        """``num_copies`` sets of produced anchors [N, D] from the current matrix and banks."""
        dimensions = das.top_k_dimensions(self.frequency[labels.long()], k)
        copies = []
        for _ in range(num_copies):
            scale, entry_draw = self.draw(len(labels), k, scale_range)
            shift = das.bank_entries(self.banks, self.filled, labels, entry_draw)
            copies.append(
                das.produce_anchors(embeddings, dimensions, scale, shift, mts_scale, normalize, detach)
            )
        return copies

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {
            "frequency": self.frequency.detach().cpu().clone(),
            "banks": self.banks.detach().cpu().clone(),
            "pointer": self.pointer.clone(),
            "filled": self.filled.clone(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = (self.num_classes, self.dim)
        if tuple(state["frequency"].shape) != expected or state["banks"].shape[1] != self.bank_size:
            raise ValueError(
                f"DAS checkpoint state has {tuple(state['frequency'].shape)} classes x dims and banks of "
                f"{state['banks'].shape[1]}, this run {expected} and {self.bank_size}; resume with the same settings"
            )
        device = self.frequency.device
        self.frequency = state["frequency"].to(device, torch.int64).clone()
        self.banks = state["banks"].to(device, self.banks.dtype).clone()
        self.pointer = state["pointer"].cpu().long().clone()
        self.filled = state["filled"].cpu().long().clone()
        self.generator.set_state(state["generator"].cpu())
