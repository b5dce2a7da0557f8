"""Embedding extraction: several heads on one trunk pass give, sample by sample, what the models
give applied to each image alone in eval mode; the models' train/eval modes are restored."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from dmlbench.evaluation.embeddings import compute_embeddings, compute_head_embeddings


def models() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    trunk = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    embedder = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    trunk[1].running_mean.uniform_(-1, 1)  # eval mode must use these, not batch statistics
    trunk[1].running_var.uniform_(0.5, 2)
    return trunk, embedder


def test_heads_share_one_trunk_pass_and_match_each_image_alone():
    trunk, embedder = models()
    trunk.train(), embedder.train()
    images = torch.randn(7, 3, 8, 8)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    calls = []
    trunk.register_forward_hook(lambda *_: calls.append(1))

    outputs, out_labels = compute_head_embeddings(
        trunk,
        {"features": None, "embedded": embedder},
        TensorDataset(images, labels),
        batch_size=3,
        device=torch.device("cpu"),
    )
    assert len(calls) == 3  # ceil(7 / 3) batches, one trunk pass for both heads
    assert trunk.training and embedder.training  # modes restored
    trunk.eval(), embedder.eval()
    with torch.no_grad():
        for i in range(7):  # each image alone through the models in eval mode
            features = trunk(images[i : i + 1])
            torch.testing.assert_close(outputs["features"][i], features[0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(outputs["embedded"][i], embedder(features)[0], rtol=1e-5, atol=1e-6)
    assert out_labels.tolist() == labels.tolist()


def test_one_head_is_compute_embeddings():
    trunk, embedder = models()
    data = TensorDataset(torch.randn(5, 3, 8, 8), torch.arange(5))
    single, _ = compute_embeddings(trunk, embedder, data, batch_size=2, device=torch.device("cpu"))
    heads, _ = compute_head_embeddings(
        trunk, {"a": embedder, "b": None}, data, batch_size=2, device=torch.device("cpu")
    )
    assert torch.equal(single, heads["a"])
    assert heads["b"].shape == (5, 4)
