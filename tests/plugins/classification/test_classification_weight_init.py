"""The classification baseline's class weights start as in the official code (uniform in
+-1/sqrt(d), azgo14/classification_metric_learning), and so one SGD step at the paper's learning
rate turns them by the amount that initialisation gives: checked against the gradient of
CE(W_n x_n / T, y) written out by hand in float64."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning.losses import NormalizedSoftmaxLoss

from dmlbench.plugins.classification import NormSoftmaxLoss
from dmlbench.registry import build

D, C, N, T = 2048, 10, 30, 0.05
LR, WD = 0.01, 1e-4


def hand_sgd_step(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One SGD step (lr, weight decay; the first momentum step is the plain gradient) on class
    weights w [C, D] of the mean CE(<w_c/|w_c|, x_i/|x_i|> / T, y_i), with the gradient by hand:
    dL/dw_c = (1/(T |w_c|)) (I - u_c u_c^T) sum_i (p_ic - 1[y_i = c]) x^_i / N,  u_c = w_c/|w_c|."""
    x_hat = x / x.norm(dim=1, keepdim=True)
    norms = w.norm(dim=1, keepdim=True)
    u = w / norms
    p = torch.softmax(x_hat @ u.T / T, dim=1)
    dz = (p - torch.nn.functional.one_hot(y, C).double()) / len(x)  # dL/dlogit * T
    raw = dz.T @ x_hat  # [C, D]
    tangential = raw - (raw * u).sum(dim=1, keepdim=True) * u
    grad = tangential / (T * norms)
    return w - LR * (grad + WD * w)


def library_sgd_step(loss: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    optimizer = torch.optim.SGD(loss.parameters(), lr=LR, momentum=0.9, weight_decay=WD)
    loss(x, y).backward()
    optimizer.step()
    return loss.W.detach().T.clone()  # [C, D] like the official layout


def turn(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Per class: |w'/|w'| - w/|w||, how far one step moved the normalised weight."""
    return (after / after.norm(dim=1, keepdim=True) - before / before.norm(dim=1, keepdim=True)).norm(dim=1)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(N, D, generator=generator, dtype=torch.float64), torch.arange(N) % C


def test_initial_weights_are_uniform_within_one_over_sqrt_d() -> None:
    torch.manual_seed(0)
    w = NormSoftmaxLoss(num_classes=C, embedding_size=D).W.detach()
    bound = 1 / math.sqrt(D)
    assert w.shape == (D, C) and w.abs().max() <= bound
    assert abs(w.std().item() - bound / math.sqrt(3)) < 0.02 * bound  # 20480 draws: sd ~0.5% of bound
    assert abs(w.norm(dim=0).mean().item() - math.sqrt(1 / 3)) < 0.01  # row norm ~0.58, not ~45


def test_one_sgd_step_turns_the_weights_as_the_official_initialisation_does(batch) -> None:
    x, y = batch
    torch.manual_seed(1)
    loss = NormSoftmaxLoss(num_classes=C, embedding_size=D).double()
    start = loss.W.detach().T.clone()
    stepped = library_sgd_step(loss, x, y)
    assert torch.allclose(stepped, hand_sgd_step(start, x, y), rtol=1e-9, atol=1e-12)

    # the official code's weights, drawn here, with our initial directions: the same turn
    generator = torch.Generator().manual_seed(2)
    official_norms = (
        torch.empty(C, D, dtype=torch.float64)
        .uniform_(-1 / math.sqrt(D), 1 / math.sqrt(D), generator=generator)
        .norm(dim=1, keepdim=True)
    )
    official = start / start.norm(dim=1, keepdim=True) * official_norms
    expected = turn(official, hand_sgd_step(official, x, y))
    assert torch.allclose(turn(start, stepped), expected, rtol=0.1)


def test_the_library_default_turns_thousands_of_times_less(batch) -> None:
    """Why the init matters: N(0, 1) rows have norm ~sqrt(D), and the turn scales as 1/|w|^2."""
    x, y = batch
    torch.manual_seed(1)
    official = NormSoftmaxLoss(num_classes=C, embedding_size=D).double()
    library = NormalizedSoftmaxLoss(num_classes=C, embedding_size=D).double()
    with torch.no_grad():  # the same directions, the library's N(0, 1) norms
        library.W.copy_(official.W / official.W.norm(dim=0) * library.W.norm(dim=0))
    ratio = turn(official.W.detach().T.clone(), library_sgd_step(official, x, y)) / turn(
        library.W.detach().T.clone(), library_sgd_step(library, x, y)
    )
    assert ratio.min() > 1000


def test_configs_name_it_and_the_runner_fills_the_sizes() -> None:
    loss = build(
        "loss",
        {"NormSoftmaxLoss": {"temperature": 0.05}},
        role="loss_funcs.metric_loss",
        context={"num_classes": 4, "embedding_size": 16},
    )
    assert isinstance(loss, NormSoftmaxLoss) and loss.W.shape == (16, 4) and loss.W.abs().max() <= 0.25
