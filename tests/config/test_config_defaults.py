"""Code that reads a setting the config leaves out uses the built-in default.yaml value."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from dmlbench.config.defaults import setting
from dmlbench.evaluation.protocol import EvaluationSettings
from dmlbench.training.fold import trainer_settings

CONFIGS = Path(__file__).resolve().parents[2] / "dmlbench" / "configs"


def default_file(category: str) -> dict:
    return yaml.safe_load((CONFIGS / category / "default.yaml").read_text())


def test_evaluation_settings_default_to_the_yaml_files() -> None:
    evaluation, general = default_file("config_eval"), default_file("config_general")
    settings = EvaluationSettings.from_config({})
    assert settings.batch_size == evaluation["eval_batch_size"]
    assert settings.normalize == evaluation["eval_normalize_embeddings"]
    assert settings.binarize == evaluation["eval_binarize"]
    assert settings.num_workers == general["dataloader_num_workers"]
    assert settings.check_untrained_accuracy == general["check_untrained_accuracy"]


def test_trainer_settings_default_to_the_yaml_files() -> None:
    required = {
        "num_epochs_train": 1,
        "iterations_per_epoch": 1,
        "save_interval": 1,
        "patience": 1,
        "eval_metric_for_best_epoch": "precision_at_1",
    }
    settings = trainer_settings(required, torch.device("cpu"), seed=0)
    assert settings.freeze_trunk_batchnorm == default_file("config_models")["freeze_trunk_batchnorm"]
    assert settings.channels_last == default_file("config_general")["channels_last"]


def test_a_config_value_wins_and_an_unknown_key_is_an_error() -> None:
    assert setting({"eval_batch_size": 3}, "eval_batch_size") == 3
    with pytest.raises(KeyError, match="no built-in default"):
        setting({}, "no_such_setting")
