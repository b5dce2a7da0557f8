"""merge_configs: the ~SWAP~N suffix (renaming keys at depth N), with hand-worked results."""

import pytest
from merge_examples import OPTIMIZERS, SPLIT, TRAINER, TRANSFORMS

from dmlbench.config import merge_configs
from dmlbench.errors import ConfigError

# ---------------------------------------------------------------- ~SWAP~N


def test_swap_depth_1_keeps_values():
    result = merge_configs(SPLIT, {"split_manager~SWAP~1": {"MLRCSplitManager": {}}})
    assert result == {
        "split_manager": {
            "MLRCSplitManager": {"test_size": 0.5, "test_start_idx": 0.5, "num_training_partitions": 4}
        }
    }


def test_swap_with_null_value_like_pb_yaml_files():
    result = merge_configs(TRAINER, {"trainer~SWAP~1": {"DeepAdversarialMetricLearning": None}})
    assert result["trainer"] == {"DeepAdversarialMetricLearning": TRAINER["trainer"]["MetricLossOnly"]}


def test_swap_depth_2_explicit_old_to_new_in_every_mapping_at_that_depth():
    result = merge_configs(
        TRANSFORMS,
        {"transforms~SWAP~2": {"RandomHorizontalFlip": "RandomVerticalFlip", "Resize": "ResizeAlt"}},
    )
    assert result == {
        "transforms": {
            "train": {
                "ResizeAlt": {"size": 256},
                "RandomResizedCrop": {"size": 227},
                "RandomVerticalFlip": {"p": 0.5},
            },
            "eval": {"ResizeAlt": {"size": 256}, "CenterCrop": {"size": 227}},
        }
    }
    assert list(result["transforms"]["train"]) == ["ResizeAlt", "RandomResizedCrop", "RandomVerticalFlip"]


def test_swap_depth_2_only_key_per_mapping():
    base = {
        "losses": {
            "metric_loss": {"TripletMarginLoss": {"margin": 0.1}},
            "other_loss": {"ContrastiveLoss": {"pos_margin": 0}},
        }
    }
    result = merge_configs(base, {"losses~SWAP~2": {"MultiSimilarityLoss": {}}})
    assert result == {
        "losses": {
            "metric_loss": {"MultiSimilarityLoss": {"margin": 0.1}},
            "other_loss": {"MultiSimilarityLoss": {"pos_margin": 0}},
        }
    }


def test_swap_with_kwargs_renames_and_merges():
    result = merge_configs(SPLIT, {"split_manager~SWAP~1": {"MLRCSplitManager": {"test_size": 0.3}}})
    assert result == {
        "split_manager": {
            "MLRCSplitManager": {"test_size": 0.3, "test_start_idx": 0.5, "num_training_partitions": 4}
        }
    }


def test_swap_is_idempotent():
    once = merge_configs(SPLIT, {"split_manager~SWAP~1": {"MLRCSplitManager": {}}})
    assert merge_configs(once, {"split_manager~SWAP~1": {"MLRCSplitManager": {}}}) == once
    flipped = merge_configs(TRANSFORMS, {"transforms~SWAP~2": {"RandomHorizontalFlip": "RandomVerticalFlip"}})
    again = merge_configs(flipped, {"transforms~SWAP~2": {"RandomHorizontalFlip": "RandomVerticalFlip"}})
    assert again == flipped


def test_swap_ambiguous_only_key_is_a_clear_error():
    with pytest.raises(ConfigError) as caught:
        merge_configs(OPTIMIZERS, {"optimizers~SWAP~1": {"SGD": {}}})
    message = str(caught.value)
    assert "optimizers~SWAP~1" in message and "trunk_optimizer, embedder_optimizer" in message
    assert "{OldName: SGD}" in message


def test_swap_errors():
    with pytest.raises(ConfigError, match="no key 'RandomHorizontalFlp'.*did you mean RandomHorizontalFlip"):
        merge_configs(TRANSFORMS, {"transforms~SWAP~2": {"RandomHorizontalFlp": "X"}})
    with pytest.raises(ConfigError, match="'CenterCrop' is already there"):
        merge_configs(TRANSFORMS, {"transforms~SWAP~2": {"Resize": "CenterCrop"}})
    with pytest.raises(ConfigError, match="no mapping at depth 3"):
        merge_configs(SPLIT, {"split_manager~SWAP~3": {"X": {}}})
    with pytest.raises(ConfigError, match="not a swap"):
        merge_configs(SPLIT, {"split_manager~SWAP~1": {"X": 5}})
    with pytest.raises(ConfigError, match="no key 'split'"):
        merge_configs(SPLIT, {"split~SWAP~1": {"X": {}}})


def test_pb_with_daml_example_swap_then_apply_in_one_file():
    # powerful-benchmarker docs/yaml_syntax.md: default.yaml + with_daml.yaml
    with_daml = {
        "trainer~SWAP~1": {"DeepAdversarialMetricLearning": None},
        "trainer~APPLY~2": {
            "g_alone_epochs": 0,
            "metric_alone_epochs": 0,
            "g_triplets_per_anchor": 100,
            "loss_weights": {
                "metric_loss": 1,
                "synth_loss": 0.1,
                "g_adv_loss": 0.1,
                "g_hard_loss": 0.1,
                "g_reg_loss": 0.1,
            },
        },
    }
    result = merge_configs(TRAINER, with_daml)
    assert result == {
        "trainer": {
            "DeepAdversarialMetricLearning": {
                "iterations_per_epoch": 100,
                "dataloader_num_workers": 2,
                "batch_size": 32,
                "loss_weights": {
                    "metric_loss": 1,
                    "synth_loss": 0.1,
                    "g_adv_loss": 0.1,
                    "g_hard_loss": 0.1,
                    "g_reg_loss": 0.1,
                },
                "g_alone_epochs": 0,
                "metric_alone_epochs": 0,
                "g_triplets_per_anchor": 100,
            }
        },
        "num_epochs_train": 1000,
    }
