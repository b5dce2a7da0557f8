"""The AVSL plugin's wiring: one level is plain Proxy-Anchor, EMA links are resumable state,
test-time ranking by D in chunks equals the dense ranking, and the multi-level model extension."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_metric_learning.losses import ProxyAnchorLoss

from dmlbench.errors import ConfigError
from dmlbench.evaluation import RetrievalSettings, retrieval_metrics
from dmlbench.evaluation.embeddings import compute_embeddings
from dmlbench.models.factory import ModelFactory
from dmlbench.models.multilevel import MultiLevelSmallConvNet, MultiLevelTrunk
from dmlbench.plugins.avsl import functional as AF
from dmlbench.plugins.avsl.modules import AVSLCollector, AVSLEmbedder
from dmlbench.plugins.avsl.plugin import AVSL
from dmlbench.training.plugins import LossInputs

sys.path.insert(0, str(Path(__file__).parents[2] / "evaluation"))
from naive_retrieval import naive_metrics

D64 = torch.float64


def test_one_level_avsl_is_plain_proxy_anchor_on_that_level() -> None:
    """L = 1: D = d^1, so PA(D) in distance form (alpha 16, margins 1.8 / 2.2) equals
    pytorch-metric-learning's cosine Proxy-Anchor (alpha 32, margin 0.1) with the same proxies,
    and the gradient reaching the embeddings is w_1 times that loss's gradient (PA(D) has none)."""
    g = torch.Generator().manual_seed(0)
    classes, dims, weight = 5, 8, 3.0
    plugin = AVSL(num_classes=classes, embedding_size=2 * dims, num_levels=1, level_weights=[weight])
    plugin.collector.to(D64)
    embeddings = torch.randn(12, dims, generator=g, dtype=D64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 0, 1, 2, 3])  # class 4 has no sample
    reference = ProxyAnchorLoss(num_classes=classes, embedding_size=dims, margin=0.1, alpha=32).to(D64)
    with torch.no_grad():
        reference.proxies.copy_(plugin.collector.proxies[0])
    certainties = [torch.rand(12, dims, generator=g, dtype=D64)]
    terms = plugin.terms([embeddings], certainties, labels)
    expected = reference(embeddings, labels)
    assert terms["avsl_final"].item() == pytest.approx(expected.item(), rel=1e-10)
    assert terms["avsl_level1"].item() == pytest.approx(weight * expected.item(), rel=1e-10)
    (ours,) = torch.autograd.grad(sum(terms.values()), embeddings)
    (theirs,) = torch.autograd.grad(expected, embeddings)
    assert torch.allclose(ours, weight * theirs, atol=1e-10)


def test_terms_are_the_weighted_losses_of_the_distances() -> None:
    g = torch.Generator().manual_seed(1)
    plugin = AVSL(
        num_classes=4,
        embedding_size=2 * 3 * 6,
        num_levels=3,
        level_weights=[0.5, 1.0, 2.0],
        topk=3,
        final_weight=0.7,
        neg_margin=2.4,
    )
    plugin.collector.to(D64)
    plugin.collector.update_links([torch.randn(6, 6, generator=g, dtype=D64) for _ in range(2)])
    e = [torch.randn(10, 6, generator=g, dtype=D64) for _ in range(3)]
    c = [torch.rand(10, 6, generator=g, dtype=D64) for _ in range(3)]
    labels = torch.randint(0, 4, (10,), generator=g)
    terms = plugin.terms(e, c, labels)
    proxies = [p.detach() for p in plugin.collector.proxies]
    pc = [torch.ones_like(p) * ci.mean() for p, ci in zip(proxies, c)]
    links = [AF.topk_column_normalized(link, 3) for link in plugin.collector.links()]
    final, levels = AF.avsl_distances(
        e,
        proxies,
        c,
        pc,
        links,
        [t.detach() for t in plugin.collector.a],
        [t.detach() for t in plugin.collector.b],
    )
    cols = torch.arange(4)
    expected_final = 0.7 * AF.proxy_anchor_distance_loss(final, labels, cols, 16, 1.8, 2.4).item()
    assert terms["avsl_final"].item() == pytest.approx(expected_final)
    for level, w in enumerate([0.5, 1.0, 2.0]):
        expected = w * AF.proxy_anchor_distance_loss(levels[level], labels, cols, 16, 1.8, 2.4).item()
        assert terms[f"avsl_level{level + 1}"].item() == pytest.approx(expected)


def test_batch_proxies_only_uses_the_batch_classes_as_columns() -> None:
    plugin = AVSL(num_classes=1500, embedding_size=2 * 4, num_levels=1)
    assert plugin.batch_proxies_only
    e = [torch.randn(6, 4)]
    labels = torch.tensor([3, 3, 700, 700, 1499, 1499])
    terms = plugin.terms(e, [torch.rand(6, 4)], labels)
    cols = torch.tensor([3, 700, 1499])
    d = AF.pair_deltas(e[0], plugin.collector.proxies[0][cols]).sum(-1)
    assert terms["avsl_final"].item() == pytest.approx(
        AF.proxy_anchor_distance_loss(d, labels, cols).item(), rel=1e-6
    )


def test_ema_links_are_checkpoint_state() -> None:
    """A collector restored from a state dict continues the EMA exactly (first-batch flag too)."""
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(5, 5, generator=g) for _ in range(4)]
    running = AVSLCollector(num_levels=2, dim=5, num_classes=3)
    running.update_links([batches[0]])
    assert torch.equal(running.links()[0], batches[0])  # the first batch is copied
    running.update_links([batches[1]])
    assert torch.allclose(running.links()[0], 0.5 * batches[0] + 0.5 * batches[1])
    restored = AVSLCollector(num_levels=2, dim=5, num_classes=3)
    restored.load_state_dict(running.state_dict())
    for batch in batches[2:]:
        running.update_links([batch])
        restored.update_links([batch])
    assert torch.equal(running.links()[0], restored.links()[0])


def test_ranking_by_d_in_chunks_equals_the_dense_ranking() -> None:
    g = torch.Generator().manual_seed(3)
    levels, dims, n = 3, 6, 23
    plugin = AVSL(num_classes=3, embedding_size=2 * levels * dims, num_levels=levels, topk=4)
    plugin.collector.update_links([torch.randn(dims, dims, generator=g) for _ in range(levels - 1)])
    with torch.no_grad():
        for t in plugin.collector.a:
            t.normal_(1.0, 1.0, generator=g)
    plugin.eval_max_elements = 2 * n * dims  # two queries per sub-block
    labels = torch.randint(0, 5, (n,), generator=g)
    rows = torch.cat(
        [torch.randn(n, levels * dims, generator=g), 0.2 * torch.rand(n, levels * dims, generator=g)], 1
    )
    similarity = plugin.eval_similarity()
    chunked = retrieval_metrics(
        rows,
        labels,
        RetrievalSettings(
            similarity=similarity, chunk_size=4, reference_chunk_size=6, recall_at=(1, 2), device="cpu"
        ),
    )
    e = list(rows[:, : levels * dims].double().split(dims, 1))
    c = list(rows[:, levels * dims :].double().split(dims, 1))
    links = [w.double() for w in plugin.collector.normalized_links(4)]
    dense, _ = AF.avsl_distances(
        e,
        e,
        c,
        c,
        links,
        [t.detach().double() for t in plugin.collector.a],
        [t.detach().double() for t in plugin.collector.b],
    )
    orders = [
        sorted((j for j in range(n) if j != i), key=lambda j: (dense[i, j].item(), j)) for i in range(n)
    ]
    expected = naive_metrics(
        None, labels.tolist(), None, labels.tolist(), exclude_self=True, recall_at=(1, 2), orders=orders
    )
    for name, value in expected.items():
        assert chunked[name] == pytest.approx(value, abs=1e-12), name


def test_embedder_output_layout_and_gradients() -> None:
    g = torch.Generator().manual_seed(4)
    embedder = AVSLEmbedder(level_channels=[3, 5], dim=4)
    maps = [
        torch.randn(2, 3, 4, 4, generator=g, requires_grad=True),
        torch.randn(2, 5, 2, 2, generator=g, requires_grad=True),
    ]
    out = embedder(maps)
    assert out.shape == (2, 2 * 2 * 4)
    for level, f in enumerate(maps):
        conv = embedder.convs[level]
        pooled = f.mean(dim=(2, 3)) + f.amax(dim=(2, 3))
        expected = pooled @ conv.weight[:, :, 0, 0].T + conv.bias
        assert torch.allclose(out[:, 4 * level : 4 * level + 4], expected, atol=1e-6)
        cam = torch.einsum("bchw,oc->bohw", f + AF.spread_max(f), conv.weight[:, :, 0, 0])
        cam = cam + conv.bias[None, :, None, None]
        assert torch.allclose(out[:, 8 + 4 * level : 12 + 4 * level], AF.certainty(cam), atol=1e-6)
    grads = torch.autograd.grad(out[:, 8:].sum(), maps, allow_unused=True)
    assert all(grad is None or not grad.any() for grad in grads)  # certainties carry no gradient
    with pytest.raises(ConfigError, match="expects 2 feature maps"):
        embedder(torch.randn(2, 3))


def test_multilevel_trunks_and_the_factory_wiring() -> None:
    trunk = MultiLevelTrunk(name="resnet18", pretrained=False)
    assert trunk.level_channels == [128, 256, 512]
    maps = trunk(torch.zeros(1, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)]
    models = ModelFactory().build(
        {
            "trunk": {"MultiLevelSmallConvNet": {"width": 4, "num_blocks": 3, "num_levels": 2}},
            "embedder": {"AVSLEmbedder": {"dim": 3}},
        }
    )
    assert models["embedder"].level_channels == [8, 16]
    dataset = [(torch.rand(3, 16, 16), 0), (torch.rand(3, 16, 16), 1)]
    pooled, _ = compute_embeddings(models["trunk"], None, dataset, batch_size=2, device=torch.device("cpu"))
    with torch.no_grad():
        last = models["trunk"].eval()(torch.stack([x for x, _ in dataset]))[-1].mean(dim=(2, 3))
    assert torch.allclose(pooled, last, atol=1e-6)
    with pytest.raises(ConfigError, match="layers"):
        MultiLevelTrunk(name="resnet18", pretrained=False, layers=["layer4", "layer2"])
    with pytest.raises(ConfigError, match="num_levels"):
        MultiLevelSmallConvNet(num_blocks=2, num_levels=3)


def test_plugin_rejects_bad_configs() -> None:
    with pytest.raises(ConfigError, match="not 2 x num_levels"):
        AVSL(num_classes=3, embedding_size=10, num_levels=3)
    with pytest.raises(ConfigError, match="level_weights"):
        AVSL(num_classes=3, embedding_size=12, num_levels=3, level_weights=[1.0])
    plugin = AVSL(num_classes=3, embedding_size=12, num_levels=3)
    with pytest.raises(ConfigError, match="AVSLEmbedder"):
        plugin.setup(types.SimpleNamespace(models={"embedder": torch.nn.Identity()}))


def test_loss_terms_update_links_from_the_activation_maps() -> None:
    g = torch.Generator().manual_seed(5)
    embedder = AVSLEmbedder(level_channels=[3, 5], dim=4)
    plugin = AVSL(num_classes=3, embedding_size=16, num_levels=2)
    maps = (torch.randn(6, 3, 4, 4, generator=g), torch.randn(6, 5, 2, 2, generator=g))
    inputs = LossInputs(embeddings=embedder(maps), labels=torch.tensor([0, 0, 1, 1, 2, 2]), features=maps)
    plugin.loss_terms(inputs, types.SimpleNamespace(models={"embedder": embedder}))
    cams = embedder.activation_maps(list(maps))
    assert torch.allclose(plugin.collector.links()[0], AF.link_matrix(cams[0], cams[1]))
    assert bool(plugin.collector.links_initialized)
    assert np.isfinite(float(plugin.collector.links()[0].sum()))


def test_empty_loss_funcs_without_plugin_terms_is_a_clear_error(tmp_path: Path) -> None:
    from dmlbench.training.trainer import Trainer, TrainerSettings

    settings = TrainerSettings(
        num_epochs=1, iterations_per_epoch=1, save_interval=1, patience=1, device=torch.device("cpu"), seed=0
    )
    trainer = Trainer(
        {"trunk": torch.nn.Identity(), "embedder": torch.nn.Identity()},
        {},
        {},
        [],
        {},
        lambda epoch: [],
        lambda models, epoch: {},
        settings,
        tmp_path,
    )
    with pytest.raises(ConfigError, match="nothing to train on"):
        trainer.compute_losses(LossInputs(embeddings=torch.randn(4, 3), labels=torch.arange(4)))
