"""Compute embeddings of a data set with a trunk (and optionally an embedder)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from dmlbench.models.multilevel import pooled
from dmlbench.progress import progress


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
    outputs, labels = compute_head_embeddings(
        trunk,
        {"out": embedder},
        dataset,
        batch_size=batch_size,
        device=device,
        num_workers=num_workers,
        desc=desc,
    )
    return outputs["out"], labels


@torch.no_grad()
def compute_head_embeddings(
    trunk: nn.Module,
    heads: dict[str, nn.Module | None],
    dataset: Dataset,
    *,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
    desc: str = "embeddings",
) -> tuple[dict[str, Tensor], Tensor]:
    """One pass of the trunk over ``dataset``, each head applied to its output: ``{name: [N, D]}``
    (float32, CPU, data set order; a ``None`` head gives the pooled trunk features) and labels [N].
    The same as one :func:`compute_embeddings` per head, at the cost of one trunk pass."""
    modules = [trunk, *(head for head in heads.values() if head is not None)]
    modes = [m.training for m in modules]
    for module in modules:
        module.eval()
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    outputs: dict[str, list[Tensor]] = {name: [] for name in heads}
    labels = []
    try:
        for images, batch_labels in progress(loader, desc=desc, unit="batch"):
            features = trunk(images.to(device, non_blocking=True))
            for name, head in heads.items():  # a multi-level trunk's maps: pooled without a head
                out = head(features) if head is not None else pooled(features)
                outputs[name].append(out.float().cpu())
            labels.append(batch_labels)
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)
    return {name: torch.cat(parts) for name, parts in outputs.items()}, torch.cat(labels)
