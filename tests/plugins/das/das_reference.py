"""DAS written from the paper's definition in plain Python (lists, float64, loops): the tests'
reference. It shares nothing with plugins/das but the documented order of the random draws (per
produced copy: the DFS factors [N, K] ~ U[l, r), then the bank draws [N] ~ U[0, 1), from one
torch.Generator) and the documented bank rule (docs/methods/das.md)."""

from __future__ import annotations

import math

import torch


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def top_k(values: list[float], k: int) -> list[int]:
    """The k largest, largest first; equal values: lower index first."""
    return sorted(range(len(values)), key=lambda j: (-values[j], j))[:k]


class NaiveDAS:
    def __init__(
        self,
        num_classes: int,
        dim: int,
        k: int,
        bank_size: int,
        scale_range: tuple[float, float],
        mts_scale: float,
        num_produce: int,
        seed: int,
        normalize: bool = True,
    ) -> None:
        self.k, self.size, self.low, self.high = k, bank_size, *scale_range
        self.mts_scale, self.num_produce, self.normalize = mts_scale, num_produce, normalize
        self.count = [[0] * dim for _ in range(num_classes)]
        self.slots: list[list[list[float] | None]] = [[None] * bank_size for _ in range(num_classes)]
        self.pointer = [0] * num_classes
        self.filled = [0] * num_classes
        self.generator = torch.Generator().manual_seed(seed)
        self.last_dimensions: list[list[int]] = []
        self.last_scales: list[list[list[float]]] = []
        self.last_entries: list[list[list[float] | None]] = []

    def push(self, label: int, entries: list[list[float]]) -> None:
        if len(entries) > self.size:  # only the last S kept, slot 0 the oldest, pointer 0
            self.slots[label] = [list(e) for e in entries[-self.size :]]
            self.pointer[label], self.filled[label] = 0, self.size
            return
        for entry in entries:  # entry m -> slot (pointer + m) mod S
            self.slots[label][self.pointer[label]] = list(entry)
            self.pointer[label] = (self.pointer[label] + 1) % self.size
            self.filled[label] = min(self.size, self.filled[label] + 1)

    def step(self, embeddings: torch.Tensor, labels: torch.Tensor) -> list[list[list[float]]]:
        rows = embeddings.detach().double().tolist()
        points = [unit(r) for r in rows] if self.normalize else rows
        ys = [int(y) for y in labels]
        for point, y in zip(points, ys):  # 1. frequency matrix
            for j in top_k(point, self.k):
                self.count[y][j] += 1
        for y in sorted(set(ys)):  # 2. banks
            members = [p for p, label in zip(points, ys) if label == y]
            differences = [[a - b for a, b in zip(pa, pb)] for pa in members for pb in members]
            self.push(y, [d for d in differences if any(x != 0 for x in d)])
        copies = []  # 3. produced anchors
        self.last_dimensions = [top_k([float(c) for c in self.count[y]], self.k) for y in ys]
        self.last_scales, self.last_entries = [], []
        for _ in range(self.num_produce):
            u_scale = torch.rand(len(ys), self.k, generator=self.generator)
            scales = (self.low + (self.high - self.low) * u_scale).tolist()
            u_entry = torch.rand(len(ys), generator=self.generator).tolist()
            copy, entries = [], []
            for i, (point, y) in enumerate(zip(points, ys)):
                produced = list(point)
                for factor, j in zip(scales[i], self.last_dimensions[i]):
                    produced[j] *= factor
                entry = None
                if self.filled[y] > 0:
                    entry = self.slots[y][
                        min(int(math.floor(u_entry[i] * self.filled[y])), self.filled[y] - 1)
                    ]
                    produced = [p + self.mts_scale * e for p, e in zip(produced, entry)]
                entries.append(entry)
                copy.append(unit(produced) if self.normalize else produced)
            self.last_scales.append(scales)
            self.last_entries.append(entries)
            copies.append(copy)
        return copies
