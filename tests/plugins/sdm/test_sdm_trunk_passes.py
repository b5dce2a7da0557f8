"""SDM's trunk passes (the official code: 8 passes of the models x 8 embedding-dropout masks = 64
views, mining on the last pass's clean embeddings), against passes computed here by calling
the models directly with the same random stream."""

from __future__ import annotations

import pytest
import torch
from pytorch_metric_learning.losses import MultiSimilarityLoss
from pytorch_metric_learning.miners import MultiSimilarityMiner
from torch import nn

from dmlbench.errors import ConfigError
from dmlbench.plugins.sdm import SDM
from dmlbench.training.plugins import LossInputs, TrainingPlugin
from dmlbench.training.trainer import Trainer, TrainerSettings

LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
P = 0.25


class RecordingMiner(MultiSimilarityMiner):
    def forward(self, embeddings, labels, *args, **kwargs):
        self.seen = embeddings.detach().clone()
        return super().forward(embeddings, labels, *args, **kwargs)


class AppendSamples(TrainingPlugin):
    def loss_inputs(self, inputs, context):
        return inputs.add_samples(-inputs.embeddings[:2], torch.tensor([7, 7]))


def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(6, 12), nn.Dropout(0.3))  # a trunk with active dropout
    models = {"trunk": trunk, "embedder": nn.Linear(12, 5)}
    for module in models.values():
        module.train()
    return models


def trainer_with(plugins: list, tmp_path, miners: dict | None = None) -> Trainer:
    settings = TrainerSettings(
        num_epochs=1, iterations_per_epoch=1, save_interval=1, patience=1, device=torch.device("cpu"), seed=0
    )
    return Trainer(
        models(),
        {"metric_loss": MultiSimilarityLoss()},
        miners or {},
        plugins,
        {},
        lambda e: None,
        lambda m, e: {},
        settings,
        tmp_path / "checkpoints",
    )


def first_pass(trainer: Trainer, images: torch.Tensor) -> LossInputs:
    features, embeddings = trainer.forward(images)  # what Trainer._step hands the plugins
    return LossInputs(embeddings=embeddings, labels=LABELS, features=features, images=images)


@pytest.mark.parametrize("passes, num_views", [(8, 16), (8, 64), (1, 8)])
def test_views_are_dropout_masks_of_distinct_trunk_passes(tmp_path, passes: int, num_views: int) -> None:
    images = torch.randn(len(LABELS), 6)
    trainer = trainer_with([SDM(num_views=num_views, dropout=P, trunk_passes=passes)], tmp_path)
    trunk, embedder = trainer.models["trunk"], trainer.models["embedder"]

    torch.manual_seed(3)  # reference: the passes called directly, each followed by its masks
    expected = []
    with torch.no_grad():
        for _ in range(passes):
            expected.append(embedder(trunk(images)))
            torch.nn.functional.dropout(torch.ones(num_views // passes, *expected[-1].shape), P)
    torch.manual_seed(3)
    inputs = trainer.plugins[0].make_views(first_pass(trainer, images), trainer)

    masks = num_views // passes
    assert inputs.views.shape == (num_views, len(LABELS), 5)
    for view in range(num_views):
        pass_embeddings = expected[view // masks]
        kept = inputs.views[view] != 0
        assert torch.allclose(inputs.views[view][kept], pass_embeddings[kept] / (1 - P), atol=1e-6)
    assert torch.allclose(inputs.mining_embeddings, expected[-1], atol=1e-6)  # the last pass, clean
    if passes > 1:
        assert not torch.allclose(expected[0], expected[1])  # the trunk dropout differs
    dropped = (inputs.views == 0).double().mean().item()
    assert abs(dropped - P) < 0.06


def test_the_miner_mines_the_last_passs_clean_embeddings_in_a_training_step(tmp_path) -> None:
    images = torch.randn(len(LABELS), 6)
    miner = RecordingMiner(epsilon=0.1)
    trainer = trainer_with([SDM(num_views=16, dropout=P, trunk_passes=8)], tmp_path, {"tuple_miner": miner})
    trunk, embedder = trainer.models["trunk"], trainer.models["embedder"]
    torch.manual_seed(5)
    with torch.no_grad():
        for _ in range(8):
            last = embedder(trunk(images))
            torch.nn.functional.dropout(torch.ones(2, *last.shape), P)
    torch.manual_seed(5)
    loss = trainer.compute_losses(first_pass(trainer, images))["metric_loss"]
    assert torch.allclose(miner.seen, last, atol=1e-6)
    loss.backward()
    assert trunk[0].weight.grad.abs().sum() > 0


def test_several_passes_refuse_samples_added_by_another_plugin(tmp_path) -> None:
    trainer = trainer_with([AppendSamples(), SDM(num_views=16, trunk_passes=8)], tmp_path)
    with pytest.raises(ConfigError, match="trunk_passes: 8 passes .* use trunk_passes: 1"):
        trainer.compute_losses(first_pass(trainer, torch.randn(len(LABELS), 6)))


def test_one_pass_over_a_trunk_with_dropout_says_what_it_skips(tmp_path) -> None:
    with pytest.warns(UserWarning, match="skips the variation between trunk passes"):
        trainer_with([SDM(num_views=8, trunk_passes=1)], tmp_path)
