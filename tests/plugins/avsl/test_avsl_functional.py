"""AVSL's pure functions against naive float64 loops written from the paper's definitions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from avsl_naive import (
    naive_certainty,
    naive_link,
    naive_pa_loss,
    naive_pair_distance,
    naive_topk_normalized,
)

from dmlbench.plugins.avsl import functional as AF

D64 = torch.float64


def test_certainty_matches_the_definition() -> None:
    maps = torch.randn(3, 4, 5, 6, generator=torch.Generator().manual_seed(0), dtype=D64)
    assert torch.allclose(AF.certainty(maps), naive_certainty(maps), atol=1e-12)


def test_certainty_of_a_peak_exceeds_that_of_a_flat_map() -> None:
    flat = torch.ones(1, 1, 4, 4, dtype=D64) + torch.arange(4, dtype=D64)  # each row: 1, 2, 3, 4
    peak = torch.zeros(1, 1, 4, 4, dtype=D64)
    peak[0, 0, 1, 2] = 5.0
    assert AF.certainty(peak).item() > AF.certainty(flat).item()


def test_spread_max_puts_hw_times_the_max_at_the_argmax() -> None:
    x = torch.tensor([[[[1.0, 7.0], [3.0, -2.0]], [[0.5, 0.0], [0.0, 2.5]]]], dtype=D64)
    expected = torch.tensor([[[[0.0, 28.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 10.0]]]], dtype=D64)
    assert torch.equal(AF.spread_max(x), expected)


def test_gap_plus_gmp() -> None:
    x = torch.tensor([[[[1.0, 7.0], [3.0, -3.0]]]], dtype=D64)
    assert AF.gap_plus_gmp(x).flatten().tolist() == [2.0 + 7.0]


@pytest.mark.parametrize("low_size", [4, 2])
def test_link_matrix_matches_the_definition(low_size: int) -> None:
    generator = torch.Generator().manual_seed(1)
    low = torch.randn(3, 5, low_size, low_size, generator=generator, dtype=D64)
    high = torch.randn(3, 4, 2, 2, generator=generator, dtype=D64)
    assert torch.allclose(AF.link_matrix(low, high), naive_link(low, high), atol=1e-12)


def test_ema_copies_the_first_batch_then_averages() -> None:
    first, second = torch.full((2, 2), 4.0), torch.full((2, 2), 2.0)
    state = AF.ema_update(torch.zeros(2, 2), first, 0.5, initialized=False)
    assert torch.equal(state, first)
    assert torch.equal(AF.ema_update(state, second, 0.5, initialized=True), torch.full((2, 2), 3.0))
    assert torch.equal(AF.ema_update(state, second, 0.75, initialized=True), torch.full((2, 2), 3.5))


def test_topk_column_normalisation_matches_the_definition() -> None:
    link = torch.randn(7, 5, generator=torch.Generator().manual_seed(2), dtype=D64)
    for k in (1, 3, 7):
        assert torch.allclose(AF.topk_column_normalized(link, k), naive_topk_normalized(link, k), atol=1e-12)


def test_topk_hand_example() -> None:
    link = torch.tensor([[0.3, -1.0], [0.1, 0.0], [0.6, 0.2]], dtype=D64)
    w = AF.topk_column_normalized(link, 2)
    expected = torch.tensor([[0.3 / 0.9, 0.0], [0.0, 0.0], [0.6 / 0.9, 0.2 / 0.2]], dtype=D64)
    assert torch.allclose(w, expected, atol=1e-7)  # the 1e-8 in the denominator


def _random_inputs(seed: int, levels: int = 3, q: int = 4, r: int = 5, dims: int = 6):
    g = torch.Generator().manual_seed(seed)
    ex = [torch.randn(q, dims, generator=g, dtype=D64) for _ in range(levels)]
    ey = [torch.randn(r, dims, generator=g, dtype=D64) for _ in range(levels)]
    cx = [torch.rand(q, dims, generator=g, dtype=D64) * 0.3 for _ in range(levels)]
    cy = [torch.rand(r, dims, generator=g, dtype=D64) * 0.3 for _ in range(levels)]
    links = [
        AF.topk_column_normalized(torch.randn(dims, dims, generator=g, dtype=D64), 3)
        for _ in range(levels - 1)
    ]
    a = [torch.randn(dims, generator=g, dtype=D64) for _ in range(levels - 1)]
    b = [0.1 * torch.randn(dims, generator=g, dtype=D64) for _ in range(levels - 1)]
    return ex, ey, cx, cy, links, a, b


def test_propagation_and_final_distance_match_the_recursion() -> None:
    ex, ey, cx, cy, links, a, b = _random_inputs(3)
    final, levels = AF.avsl_distances(ex, ey, cx, cy, links, a, b, gamma=10.0)
    for i in range(final.shape[0]):
        for j in range(final.shape[1]):
            d, per_level = naive_pair_distance(
                [e[i] for e in ex],
                [e[j] for e in ey],
                [c[i] for c in cx],
                [c[j] for c in cy],
                links,
                a,
                b,
                10.0,
            )
            assert final[i, j].item() == pytest.approx(d, abs=1e-12)
            for level, value in enumerate(per_level):
                assert levels[level][i, j].item() == pytest.approx(value, abs=1e-12)


def test_final_distance_reaches_only_a_and_b() -> None:
    ex, ey, cx, cy, links, a, b = _random_inputs(4)
    ex = [e.requires_grad_(True) for e in ex]
    a = [t.requires_grad_(True) for t in a]
    final, _ = AF.avsl_distances(ex, ey, cx, cy, links, a, b, gamma=10.0)
    final.sum().backward()
    assert all(e.grad is None for e in ex)
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in a)


def test_pa_loss_matches_the_definition() -> None:
    g = torch.Generator().manual_seed(5)
    distances = torch.rand(8, 4, generator=g, dtype=D64) * 4
    rows = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])  # proxy 3 has no positive
    cols = torch.arange(4)
    for alpha, pos, neg in ((16.0, 1.8, 2.2), (32.0, 1.0, 2.4)):
        expected = naive_pa_loss(distances.tolist(), rows.tolist(), cols.tolist(), alpha, pos, neg)
        loss = AF.proxy_anchor_distance_loss(distances, rows, cols, alpha, pos, neg)
        assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_each_weighted_term_and_gradients_of_a_b_by_finite_differences() -> None:
    """d/da, d/db of w_f PA(D) by autograd equal central differences of the naive formula."""
    ex, ey, cx, cy, links, a, b = _random_inputs(6, q=5, r=3, dims=4)
    rows, cols = torch.tensor([0, 1, 2, 0, 1]), torch.arange(3)

    def naive_loss(a_vals, b_vals) -> float:
        matrix = [
            [
                naive_pair_distance(
                    [e[i] for e in ex],
                    [e[j] for e in ey],
                    [c[i] for c in cx],
                    [c[j] for c in cy],
                    links,
                    a_vals,
                    b_vals,
                    10.0,
                )[0]
                for j in range(3)
            ]
            for i in range(5)
        ]
        return naive_pa_loss(matrix, rows.tolist(), cols.tolist(), 16.0, 1.8, 2.2)

    a_t = [t.clone().requires_grad_(True) for t in a]
    b_t = [t.clone().requires_grad_(True) for t in b]
    final, _ = AF.avsl_distances(ex, ey, cx, cy, links, a_t, b_t, gamma=10.0)
    loss = AF.proxy_anchor_distance_loss(final, rows, cols)
    assert loss.item() == pytest.approx(naive_loss(a, b), rel=1e-10)
    loss.backward()
    eps = 1e-6
    for params, grads in ((a, [t.grad for t in a_t]), (b, [t.grad for t in b_t])):
        for level in range(len(params)):
            for k in range(params[level].numel()):
                plus = [t.clone() for t in params]
                minus = [t.clone() for t in params]
                plus[level][k] += eps
                minus[level][k] -= eps
                args_plus = (plus, b) if params is a else (a, plus)
                args_minus = (minus, b) if params is a else (a, minus)
                numeric = (naive_loss(*args_plus) - naive_loss(*args_minus)) / (2 * eps)
                assert grads[level][k].item() == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_chunked_distance_equals_dense() -> None:
    ex, ey, cx, cy, links, a, b = _random_inputs(7, q=9, r=7)
    dense, _ = AF.avsl_distances(ex, ey, cx, cy, links, a, b)
    for budget in (1, 7 * 6, 3 * 7 * 6, 10**9):
        chunked = AF.avsl_final_distance_chunked(ex, ey, cx, cy, links, a, b, max_elements=budget)
        assert torch.allclose(chunked, dense, rtol=0, atol=1e-13)


def test_pair_attribution_sums_to_the_naive_distance() -> None:
    ex, ey, cx, cy, links, a, b = _random_inputs(8, q=4, r=4)
    contributions = AF.pair_attribution(ex, ey, cx, cy, links, a, b, gamma=10.0)
    assert contributions.shape == (4, 3, 6)
    assert bool((contributions >= 0).all())
    for i in range(4):
        d, _ = naive_pair_distance(
            [e[i] for e in ex], [e[i] for e in ey], [c[i] for c in cx], [c[i] for c in cy], links, a, b, 10.0
        )
        assert contributions[i].sum().item() == pytest.approx(d, abs=1e-12)
    # a level whose gate is fully open (P = 1) passes nothing down: lower levels contribute 0
    shut = [torch.full_like(t, 100.0) for t in b]
    assert AF.pair_attribution(ex, ey, cx, cy, links, a, shut)[:, :2].abs().max().item() < 1e-12
