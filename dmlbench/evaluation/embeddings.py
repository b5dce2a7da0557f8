"""Compute embeddings of a data set with a trunk (and optionally an embedder)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from dmlbench.models.multilevel import pooled
from dmlbench.progress import progress


@torch.no_grad()
def compute_embeddings(
    trunk: nn.Module,
    embedder: nn.Module | None,
    dataset: Dataset,
    *,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
    desc: str = "embeddings",
) -> tuple[Tensor, Tensor]:
    """Embeddings [N, D] (float32, on CPU, in data set order) and labels [N].

    With ``embedder=None`` the trunk features are returned (the "untrained_trunk" status).
    Models are put in eval mode for the pass and restored afterwards.
    """
    modules = [m for m in (trunk, embedder) if m is not None]
    modes = [m.training for m in modules]
    for module in modules:
        module.eval()
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=device.type == "cuda"
    )
    outputs, labels = [], []
    try:
        for images, batch_labels in progress(loader, desc=desc, unit="batch"):
            out = trunk(images.to(device, non_blocking=True))
            out = embedder(out) if embedder is not None else pooled(out)  # a multi-level trunk's maps: pooled
            outputs.append(out.float().cpu())
            labels.append(batch_labels)
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)
    return torch.cat(outputs), torch.cat(labels)
