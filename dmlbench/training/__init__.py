"""Training: the fold loop, its components, checkpoints, seeds and extension points."""

from dmlbench.training.plugins import LossInputs, TrainingPlugin
from dmlbench.training.trainer import Trainer, TrainerSettings, TrainingState

__all__ = ["LossInputs", "Trainer", "TrainerSettings", "TrainingPlugin", "TrainingState"]
