"""The contextual-similarity paper's embedding head and its 224-px train-only projector."""

from __future__ import annotations

import dataclasses

from torch import Tensor, nn
from torch.nn import functional as F

from dmlbench.errors import ConfigError
from dmlbench.models.embedders import layer_norm_matrix, linear_form
from dmlbench.registry import register
from dmlbench.training.plugins import LossInputs, StepContext, TrainingPlugin

INITS = ("pytorch", "kaiming_fan_out")


@register("model")
class ContextualEmbedder(nn.Module):
    """``x = L2norm(Linear(LayerNorm?(f)))`` for pooled trunk features ``f`` [B, input_size].

    - ``layer_norm``: standardise each feature vector first, without affine parameters (the
      256-px CUB/Cars network; the 256-px SOP/iNaturalist and the 224-px networks have none);
    - ``Linear(input_size, embedding_size, bias)``, initialised the PyTorch way (``pytorch``,
      256-px code) or ``kaiming_fan_out`` (Kaiming-normal weights, fan-out mode, zero bias: the
      224-px code);
    - the output is L2-normalised when ``normalize``.

    ``input_size`` is filled in by the model factory from the trunk.
    """

    def __init__(
        self,
        input_size: int,
        embedding_size: int = 512,
        layer_norm: bool = True,
        bias: bool = True,
        init: str = "pytorch",
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(embedding_size, bool) or not isinstance(embedding_size, int) or embedding_size < 1:
            raise ConfigError(
                f"ContextualEmbedder: embedding_size={embedding_size!r} must be a positive integer"
            )
        if init not in INITS:
            raise ConfigError(f"ContextualEmbedder: init={init!r}; choose one of {', '.join(INITS)}")
        self.standardize = nn.LayerNorm(int(input_size), elementwise_affine=False) if layer_norm else None
        self.remap = nn.Linear(int(input_size), embedding_size, bias=bool(bias))
        if init == "kaiming_fan_out":
            nn.init.kaiming_normal_(self.remap.weight, mode="fan_out")
            if self.remap.bias is not None:
                nn.init.zeros_(self.remap.bias)
        self.normalize = bool(normalize)
        self.num_features = embedding_size

    def forward(self, features: Tensor) -> Tensor:
        x = features.flatten(1)
        if self.standardize is not None:
            x = self.standardize(x)
        x = self.remap(x)
        return F.normalize(x, p=2, dim=1) if self.normalize else x

    def affine_form(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Before the L2 normalisation, ``e = W Q y / s + b`` at ``features`` ``y`` [C]
        (:func:`~dmlbench.models.embedders.layer_norm_matrix`: ``Q / s`` is LayerNorm at ``y``)."""
        return linear_form(self.remap, layer_norm_matrix(self.standardize, features))


@register("training_plugin")
class TrainProjector(TrainingPlugin):
    """A projector used only in training (the 224-px recipe, CUB and Cars): the losses see
    ``L2norm(P x)`` with ``P`` a bias-free ``Linear(embedding_size, output_size)``; retrieval
    uses ``x``. ``P`` is the trained part ``projector`` (``optimizers.projector_optimizer``)."""

    def __init__(
        self, embedding_size: int | None = None, output_size: int = 2048, normalize: bool = True
    ) -> None:
        if embedding_size is None:
            raise ConfigError(
                "training_plugins.TrainProjector.embedding_size: the embedder's width is unknown; "
                "set it (e.g. 512)"
            )
        if isinstance(output_size, bool) or not isinstance(output_size, int) or output_size < 1:
            raise ConfigError(
                f"training_plugins.TrainProjector.output_size={output_size!r} must be a positive integer"
            )
        self.projector = nn.Linear(int(embedding_size), output_size, bias=False)
        self.normalize = bool(normalize)

    def modules(self) -> dict[str, nn.Module]:
        return {"projector": self.projector}

    def loss_inputs(self, inputs: LossInputs, context: StepContext) -> LossInputs:
        projected = self.projector(inputs.embeddings)
        if self.normalize:
            projected = F.normalize(projected, p=2, dim=1)
        return dataclasses.replace(inputs, embeddings=projected)
