"""Config categories on disk: file lists merged in order, folder precedence, helpful errors."""

from pathlib import Path

import pytest

from dmlbench.config import CATEGORIES, load_category, parse_file_list
from dmlbench.errors import ConfigError


def make(root: Path, category: str, name: str, text: str) -> None:
    folder = root / category
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def defaults(tmp_path):
    root = tmp_path / "defaults"
    make(
        root,
        "config_general",
        "default",
        """
trainer:
  MetricLossOnly:
    iterations_per_epoch: 100
    batch_size: 32
    loss_weights: null
num_epochs_train: 1000
save_interval: 2
patience: 9
""",
    )
    make(root, "config_general", "with_cars196", "save_interval: 5\npatience: 14\n")
    make(root, "config_general", "with_sop", "save_interval: 20\npatience: 39\n")
    make(
        root,
        "config_general",
        "with_daml",
        """
trainer~SWAP~1:
  DeepAdversarialMetricLearning:

trainer~APPLY~2:
  g_alone_epochs: 0
  loss_weights:
    metric_loss: 1
    synth_loss: 0.1
""",
    )
    make(
        root,
        "config_optimizers",
        "default",
        """
optimizers:
  trunk_optimizer:
    RMSprop: {lr: 1e-6, weight_decay: 0.0001}
  embedder_optimizer:
    RMSprop: {lr: 1e-6, weight_decay: 0.0001}
""",
    )
    make(root, "config_optimizers", "with_higher_lr", "optimizers~APPLY~3:\n  lr: 1e-5\n")
    make(root, "config_optimizers", "without_embedder", "optimizers:\n  embedder_optimizer~REMOVE~: {}\n")
    return root


def test_categories_constant():
    assert CATEGORIES == (
        "config_general",
        "config_models",
        "config_loss_and_miners",
        "config_optimizers",
        "config_transforms",
        "config_eval",
        "config_dataset",
        "config_factories",
    )


def test_files_merge_in_the_given_order(defaults):
    assert load_category("config_general", ["default", "with_cars196"], [defaults])["patience"] == 14
    assert (
        load_category("config_general", ["default", "with_cars196", "with_sop"], [defaults])["patience"] == 39
    )
    assert (
        load_category("config_general", ["default", "with_sop", "with_cars196"], [defaults])["patience"] == 14
    )


def test_special_keys_in_yaml_files(defaults):
    general = load_category("config_general", ["default", "with_daml"], [defaults])
    assert general == {
        "trainer": {
            "DeepAdversarialMetricLearning": {
                "iterations_per_epoch": 100,
                "batch_size": 32,
                "loss_weights": {"metric_loss": 1, "synth_loss": 0.1},
                "g_alone_epochs": 0,
            }
        },
        "num_epochs_train": 1000,
        "save_interval": 2,
        "patience": 9,
    }
    optimizers = load_category("config_optimizers", "[default, with_higher_lr, without_embedder]", [defaults])
    assert optimizers == {
        "optimizers": {"trunk_optimizer": {"RMSprop": {"lr": 1e-5, "weight_decay": 0.0001}}}
    }


def test_a_file_whose_special_keys_need_a_base_fails_alone(defaults):
    with pytest.raises(ConfigError, match=r"with_daml\.yaml.*no key 'trainer'"):
        load_category("config_general", ["with_daml"], [defaults])


def test_first_folder_that_has_the_file_wins_per_name(defaults, tmp_path):
    experiment = tmp_path / "exp_configs" / "car_ms" / "configs"
    make(experiment, "config_general", "with_cars196", "save_interval: 99\n")
    result = load_category("config_general", ["default", "with_cars196"], [experiment, defaults])
    assert result["save_interval"] == 99
    assert result["patience"] == 9  # experiment's with_cars196 replaced the default one entirely
    assert result["num_epochs_train"] == 1000  # "default" came from the defaults folder


def test_missing_name_lists_available_names_nearest_first(defaults):
    with pytest.raises(ConfigError) as caught:
        load_category("config_general", ["default", "with_cars"], [defaults])
    message = str(caught.value)
    assert "with_cars" in message and "config_general" in message
    listed = message.split("available: ")[1].split(", ")
    assert sorted(listed) == ["default", "with_cars196", "with_daml", "with_sop"]
    assert listed[0] == "with_cars196"


def test_unknown_category(defaults):
    with pytest.raises(ConfigError, match="did you mean config_general"):
        load_category("config_generl", ["default"], [defaults])


def test_malformed_file_error_names_file_and_line(defaults):
    make(defaults, "config_eval", "broken", "a: 1\nb: [1,\n")
    with pytest.raises(ConfigError, match=r"config_eval/broken\.yaml:3:"):
        load_category("config_eval", ["broken"], [defaults])


@pytest.mark.parametrize(
    "value, expected",
    [
        ("[default, with_cars196]", ["default", "with_cars196"]),
        ("default", ["default"]),
        ("default with_cars196", ["default", "with_cars196"]),
        (["default", "with_sop.yaml"], ["default", "with_sop"]),
        (("a", "b"), ["a", "b"]),
    ],
)
def test_parse_file_list(value, expected):
    assert parse_file_list(value, "--config_general") == expected


@pytest.mark.parametrize("value", ["[]", "[default, 3]", "{a: 1}", "[../etc/passwd]", 5, [""]])
def test_parse_file_list_rejects(value):
    with pytest.raises(ConfigError, match="--config_general"):
        parse_file_list(value, "--config_general")
