"""Every Python block of docs/extending.md runs, and each worked example does what the page says,
checked against direct computations (not against the plugin's own code paths)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from pytorch_metric_learning.losses import ContrastiveLoss
from pytorch_metric_learning.miners import BatchHardMiner

from dmlbench.errors import ConfigError
from dmlbench.training.plugin_set import PluginSet
from dmlbench.training.plugins import LossInputs
from dmlbench.training.trainer import Trainer, TrainerSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"
LABELS = torch.tensor([0, 0, 1, 1, 2, 2])


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def doc() -> dict:
    namespace: dict = {}
    for block in python_blocks():  # in page order, as a reader would paste them
        exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


def trainer(tmp_path, plugins, losses=None, models=None, miners=None, loss_weights=None) -> Trainer:
    settings = TrainerSettings(
        num_epochs=1,
        iterations_per_epoch=1,
        save_interval=1,
        patience=10,
        device=torch.device("cpu"),
        seed=0,
        loss_weights=loss_weights or {},
    )
    return Trainer(
        models or {},
        losses if losses is not None else {"metric_loss": ContrastiveLoss()},
        miners or {},
        plugins,
        {},
        lambda epoch: None,
        lambda models, epoch: {},
        settings,
        tmp_path / "checkpoints",
    )


def batch(seed: int = 0, dim: int = 4) -> torch.Tensor:
    return torch.randn(len(LABELS), dim, generator=torch.Generator().manual_seed(seed))


def test_the_page_has_an_example_per_extension_point(doc) -> None:
    assert len(python_blocks()) >= 8
    for name in [
        "MyMethod",
        "NoisyViews",
        "ScaledCopies",
        "LearnedL1",
        "Projector",
        "NormPenalty",
        "ForgotModules",
        "SecondPass",
    ]:
        assert name in doc, name


def test_noisy_views_make_four_views_and_the_loss_sees_their_mean_distance(doc, tmp_path) -> None:
    plugin = doc["NoisyViews"]()
    x = batch()
    views = plugin.make_views(LossInputs(embeddings=x, labels=LABELS), None).views
    assert views.shape == (4, len(LABELS), 4)
    assert (views - x).abs().max() < 0.1
    losses = trainer(tmp_path, [plugin]).compute_losses(LossInputs(embeddings=x, labels=LABELS))
    assert torch.isfinite(losses["metric_loss"])


def test_scaled_copies_double_the_samples_with_the_same_labels(doc) -> None:
    x = batch()
    out = doc["ScaledCopies"]().loss_inputs(LossInputs(embeddings=x, labels=LABELS), None)
    assert out.embeddings.shape == (12, 4) and out.labels.tolist() == LABELS.tolist() * 2
    assert torch.equal(out.embeddings[:6], x)
    assert ((out.embeddings[6:] / x) - 1).abs().max() < 0.1  # multiplicative noise of 1%


def test_learned_l1_trains_its_weights_and_ranks_by_weighted_l1(doc) -> None:
    plugin = doc["LearnedL1"](embedding_size=3)
    assert set(plugin.modules()) == {"l1_weights"}
    PluginSet([plugin])  # declared: accepted
    with torch.no_grad():
        plugin.l1_weights.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    q, r = batch(1, 3)[:2], batch(2, 3)[:3]
    qn, rn = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(r, dim=1)
    expected = torch.tensor(
        [
            [-sum(abs(float(qn[i, k] - rn[j, k])) * [1.0, 2.0, 0.5][k] for k in range(3)) for j in range(3)]
            for i in range(2)
        ]
    )
    assert torch.allclose(plugin.eval_similarity()(q, r), expected, atol=1e-5)


def test_projector_maps_to_2048_and_is_a_trained_part(doc) -> None:
    plugin = doc["Projector"](embedding_size=4)
    out = plugin.loss_inputs(LossInputs(embeddings=batch(), labels=LABELS), None)
    assert out.embeddings.shape == (6, 2048)
    assert torch.allclose(out.embeddings, batch() @ plugin.projector.weight.T + plugin.projector.bias)
    PluginSet([plugin])


def test_norm_penalty_is_added_as_its_own_term(doc, tmp_path) -> None:
    x = batch() * 3
    losses = trainer(tmp_path, [doc["NormPenalty"](weight=0.05)]).compute_losses(
        LossInputs(embeddings=x, labels=LABELS)
    )
    expected = 0.05 * sum((float(row.norm()) - 1) ** 2 for row in x) / len(x)
    assert set(losses) == {"metric_loss", "norm_penalty"}
    assert losses["norm_penalty"].item() == pytest.approx(expected, rel=1e-5)
    only = trainer(tmp_path, [doc["NormPenalty"](weight=1.0)], losses={}).compute_losses(
        LossInputs(embeddings=x, labels=LABELS)
    )
    assert set(only) == {"norm_penalty"}  # a plugin's terms may be the whole objective


def test_a_parameter_outside_modules_is_refused_at_build_time(doc, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"ForgotModules: self\.weight .*modules\(\)") as error:
        trainer(tmp_path, [doc["ForgotModules"](embedding_size=3)])
    assert "\n" not in str(error.value)
    plugin = doc["MyMethod"](strength=2.0)
    PluginSet([plugin])


def test_second_pass_repeats_the_mined_weighted_losses_on_a_new_forward_pass(doc, tmp_path) -> None:
    """Deterministic models: the second pass gives the same embeddings, so the term is
    weight * loss_weight * contrastive(e, labels, batch-hard tuples of e), computed here with the library
    directly (the mined value differs from the unmined one, so mining is checked too)."""
    torch.manual_seed(0)
    embedder = torch.nn.Linear(4, 3)
    images = batch()
    miner = BatchHardMiner()
    plugin = doc["SecondPass"](weight=0.25)
    step = trainer(
        tmp_path,
        [plugin],
        models={"trunk": torch.nn.Identity(), "embedder": embedder},
        miners={"tuple_miner": miner},
        loss_weights={"metric_loss": 2.0},
    )
    e = embedder(images)
    losses = step.compute_losses(LossInputs(embeddings=e, labels=LABELS, images=images))
    e = e.detach()
    expected = 0.25 * 2.0 * ContrastiveLoss()(e, LABELS, miner(e, LABELS)).item()
    assert expected != pytest.approx(0.25 * 2.0 * ContrastiveLoss()(e, LABELS).item(), rel=1e-3)
    assert set(losses) == {"metric_loss", "second_pass"}
    assert losses["second_pass"].item() == pytest.approx(expected, rel=1e-5)
    assert plugin.loss_terms(LossInputs(embeddings=e, labels=LABELS), step) == {}  # no images: no term


def test_second_pass_refuses_an_empty_loss_funcs_in_setup(doc, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"training_plugins\.SecondPass: loss_funcs is empty") as error:
        trainer(tmp_path, [doc["SecondPass"]()], losses={})
    assert "\n" not in str(error.value)


def test_the_new_loss_is_its_formula_pair_by_pair(doc) -> None:
    from dmlbench.registry import lookup

    loss_class = lookup("loss", "SquaredPairLoss")
    assert loss_class is doc["SquaredPairLoss"]
    embeddings = batch(seed=3, dim=5).requires_grad_()
    loss = loss_class(margin=0.8)(embeddings, LABELS)
    unit = torch.nn.functional.normalize(embeddings.detach(), dim=1)
    pull, push = [], []
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            if i == j:
                continue
            distance = float(torch.linalg.vector_norm(unit[i] - unit[j]))
            if LABELS[i] == LABELS[j]:
                pull.append(distance**2)
            else:
                push.append(max(0.0, 0.8 - distance) ** 2)
    assert float(loss) == pytest.approx(sum(pull) / len(pull) + sum(push) / len(push), rel=1e-5)
    loss.backward()
    assert embeddings.grad is not None and embeddings.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match=r"SquaredPairLoss\.margin: expected a positive number, got -1"):
        loss_class(margin=-1)
