"""ContextualHybridLoss and its functions against independent float64 computations
(contextual_reference.py: set-counting loops for values, dense formulas with a detach-trick
straight-through step for gradients)."""

from __future__ import annotations

import pytest
import torch
from contextual_reference import (
    batch,
    dense_hybrid,
    loop_contextual_similarity,
    loop_contextual_term,
    loop_contrastive,
)
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from dmlbench.errors import ConfigError
from dmlbench.plugins.contextual import functional as CF
from dmlbench.plugins.contextual.loss import ContextualHybridLoss
from dmlbench.registry import build

CASES = [
    (size, kind, seed)
    for size in (8, 16, 32)
    for kind in ("random", "clustered", "ties", "kth_tie")
    for seed in (0, 1)
]


def _unit_similarity(x: torch.Tensor) -> torch.Tensor:
    unit = x / x.norm(dim=1, keepdim=True)
    return unit @ unit.T


# ----------------------------------------------------------------------------- step function
def test_step_is_hard_forward_and_fixed_slope_backward() -> None:
    x = torch.tensor([[-1.0, 0.5, 0.5, 2.0]], dtype=torch.float64, requires_grad=True)
    threshold = torch.tensor([[0.5]], dtype=torch.float64, requires_grad=True)
    out = CF.straight_through_step(x, threshold, slope=10.0)
    assert out.tolist() == [[0.0, 1.0, 1.0, 1.0]]  # ties are inside
    upstream = torch.tensor([[1.0, -2.0, 3.0, 0.5]], dtype=torch.float64)
    out.backward(upstream)
    assert torch.equal(x.grad, 10.0 * upstream)  # same slope everywhere, far or near
    assert threshold.grad is None  # the threshold is a constant
    y = torch.tensor([0.1, -0.1], requires_grad=True)
    CF.straight_through_step(y, torch.zeros(()), slope=2.5).sum().backward()
    assert y.grad.tolist() == [2.5, 2.5]


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize(
    "size,kind,seed", [(8, "random", 0), (12, "ties", 1), (12, "kth_tie", 2), (16, "clustered", 3)]
)
@pytest.mark.parametrize("k,eps", [(4, 0.05), (4, 0.0), (6, 0.1), (2, 0.0)])
def test_contextual_similarity_matches_set_counting(
    size: int, kind: str, seed: int, k: int, eps: float
) -> None:
    x, labels = batch(size, 4, 6, seed, kind)
    sim = _unit_similarity(x)
    expected = torch.tensor(loop_contextual_similarity(sim.tolist(), k, eps), dtype=torch.float64)
    got = CF.contextual_similarity(sim, k=k, eps=eps)
    assert torch.allclose(got, expected, atol=1e-12)
    same = (labels[:, None] == labels[None]).double()
    term = CF.contextual_term(sim, same, k=k, eps=eps)
    assert term.item() == pytest.approx(loop_contextual_term(expected.tolist(), labels.tolist()), abs=1e-12)


def test_kth_tie_puts_both_tied_samples_in_the_neighbourhood() -> None:
    x, _ = batch(12, 4, 6, 0, "kth_tie")
    near, half = CF.neighbour_masks(CF.squared_distances(_unit_similarity(x)), k=4, eps=0.0)
    assert near[0].nonzero().flatten().tolist() == [0, 1, 2, 3, 4]  # 5 members for k = 4: the tie
    assert half[0].nonzero().flatten().tolist() == [0, 1, 2]  # (k//2)-th = 2nd nearest, also tied


@pytest.mark.parametrize("size,kind,seed", [(8, "random", 0), (16, "clustered", 1), (16, "ties", 2)])
def test_contrastive_term_matches_loop(size: int, kind: str, seed: int) -> None:
    x, labels = batch(size, 4, 6, seed, kind)
    sim = _unit_similarity(x)
    same = (labels[:, None] == labels[None]).double()
    for pos, neg in ((0.75, 0.6), (0.9, 0.1), (-1.0, 1.0)):  # the last: nothing active -> 0
        got = CF.contrastive_term(sim, same, pos, neg).item()
        assert got == pytest.approx(loop_contrastive(sim.tolist(), labels.tolist(), pos, neg), abs=1e-12)


# ----------------------------------------------------------------------------- loss, values and gradients
SETTINGS = {
    "256 defaults": ({}, {"contextual": 0.4, "contrastive": 0.5, "regularizer": 0.1}, {}),
    "224 CUB": (
        {"version": "224", "lam": 0.05, "gamma": 0.1, "eps": 0.04, "reg_sim": 0.3},
        {"contextual": 0.95, "contrastive": 0.05, "regularizer": 0.1},
        {"eps": 0.04, "reg_sim": 0.3},
    ),
    "contextual only": ({"lam": 1.0, "gamma": 0.0}, {"contextual": 1.0}, {}),
    "contrastive only": ({"lam": 0.0, "gamma": 0.0}, {"contrastive": 1.0}, {}),
    "regulariser weight 0": ({"gamma": 0.0}, {"contextual": 0.4, "contrastive": 0.6}, {}),
    "weights, regulariser only": ({"weights": {"regularizer": 1.0}}, {"regularizer": 1.0}, {}),
    "k 6": (
        {"k": 6, "eps": 0.1},
        {"contextual": 0.4, "contrastive": 0.5, "regularizer": 0.1},
        {"k": 6, "eps": 0.1},
    ),
}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("size,kind,seed", CASES)
def test_loss_and_gradient_match_dense_reference(setting: str, size: int, kind: str, seed: int) -> None:
    kwargs, weights, reference_kwargs = SETTINGS[setting]
    x, labels = batch(size, max(2, size // 4), 16, seed, kind)
    mine = x.clone().requires_grad_(True)
    theirs = x.clone().requires_grad_(True)
    value = ContextualHybridLoss(**kwargs)(mine, labels)
    expected = dense_hybrid(theirs, labels, weights, **reference_kwargs)
    value.backward()
    expected.backward()
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(expected.item(), abs=1e-12)
    assert torch.allclose(mine.grad, theirs.grad, atol=1e-12, rtol=1e-9)


def test_gradient_flows_through_the_contextual_term_alone() -> None:
    x, labels = batch(16, 4, 16, 0, "random")
    x.requires_grad_(True)
    ContextualHybridLoss(weights={"contextual": 1.0})(x, labels).backward()
    assert x.grad.abs().sum() > 0


def test_half_precision_inputs_are_scored_in_float32() -> None:
    x, labels = batch(16, 4, 16, 0, "clustered")
    loss = ContextualHybridLoss()
    half = loss(x.half(), labels)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(loss(x.half().float(), labels).item(), abs=1e-6)


def test_all_mined_pairs_equal_no_miner_and_fewer_pairs_change_the_loss() -> None:
    x, labels = batch(16, 4, 16, 1, "random")
    loss = ContextualHybridLoss()
    everything = lmu.get_all_pairs_indices(labels)
    assert loss(x, labels, everything).item() == pytest.approx(loss(x, labels).item(), abs=1e-12)
    a1, p, a2, n = everything
    some = (a1[::2], p[::2], a2[::3], n[::3])
    assert loss(x, labels, some).item() != pytest.approx(loss(x, labels).item(), abs=1e-6)
    triplets = lmu.get_all_triplets_indices(labels)
    assert torch.isfinite(loss(x, labels, triplets))


def test_registered_and_defaults_are_the_official_256_px_settings() -> None:
    loss = build("loss", {"ContextualHybridLoss": {}}, role="loss_funcs.metric_loss")
    assert isinstance(loss, ContextualHybridLoss)
    assert (loss.k, loss.eps, loss.reg_sim, loss.pos_margin, loss.neg_margin) == (4, 0.05, 0.25, 0.75, 0.6)
    assert loss.weights == pytest.approx({"contextual": 0.4, "contrastive": 0.5, "regularizer": 0.1})


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"k": 1}, "k=1"),
        ({"lam": 0.8, "gamma": 0.3}, "negative weight"),
        ({"version": "512"}, "version"),
        ({"weights": {"contxt": 1.0}}, "weights"),
        ({"eps": "big"}, "eps"),
        ({"distance": None}, "cosine"),
    ],
)
def test_bad_arguments_are_one_line_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ContextualHybridLoss(**kwargs)


def test_batch_smaller_than_k_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="batch size 3"):
        ContextualHybridLoss()(torch.randn(3, 4), torch.tensor([0, 0, 1]))
