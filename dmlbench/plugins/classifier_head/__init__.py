"""A classifier head on the embeddings: powerful-benchmarker's TrainWithClassifier as a training plugin.

powerful-benchmarker 0.9 (``trainer: TrainWithClassifier``, pytorch-metric-learning 0.9's
``TrainWithClassifier.calculate_loss``) adds to the metric loss
``w * classifier_loss(classifier(embeddings), labels)``, where ``classifier`` is its
``models.classifier`` MLP with the embedding size prepended and the number of training classes
appended to ``layer_sizes`` (``ClassifierModelFactory.create_classifier``), ``classifier_loss`` its
``loss_funcs.classifier_loss`` and ``w`` its ``loss_weights.classifier_loss`` (default 1). The
config translation (dmlbench.config.pb_values) writes that as ``training_plugins: {Classifier:
{layer_sizes, loss, weight}}``; the module is trained by ``optimizers.classifier_optimizer``, as in
powerful-benchmarker.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from dmlbench.models.embedders import MLP
from dmlbench.registry import build, register
from dmlbench.training.plugins import LossInputs, StepContext, TrainingPlugin


@register("training_plugin", "Classifier")
class Classifier(TrainingPlugin):
    """``weight * loss(MLP(embeddings), labels)`` as the loss term ``classifier_loss``."""

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        layer_sizes: list[int] | None = None,
        loss: dict[str, Any] | None = None,
        weight: float = 1.0,
    ) -> None:
        sizes = [*(layer_sizes or []), int(num_classes)]
        self.classifier = MLP(layer_sizes=sizes, input_size=int(embedding_size))
        self.loss = build("loss", loss or {"CrossEntropyLoss": {}}, role="training_plugins.Classifier.loss")
        self.weight = float(weight)

    def modules(self) -> dict[str, nn.Module]:
        return {"classifier": self.classifier}

    def loss_terms(self, inputs: LossInputs, context: StepContext) -> dict[str, Tensor]:
        logits = self.classifier(inputs.embeddings)
        return {"classifier_loss": self.weight * self.loss(logits, inputs.labels.to(logits.device))}
