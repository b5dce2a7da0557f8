"""merge_configs: plain recursive merge and every special suffix, with hand-worked results."""

import copy

import pytest
from merge_examples import OPTIMIZERS, SPLIT, TRAINER, TRANSFORMS

from dmlbench.config import merge_configs
from dmlbench.config.keys import VALID_SUFFIXES
from dmlbench.errors import ConfigError


def keys_with_tilde(value, found=None):
    found = [] if found is None else found
    if isinstance(value, dict):
        for key, item in value.items():
            if "~" in str(key):
                found.append(key)
            keys_with_tilde(item, found)
    elif isinstance(value, list):
        for item in value:
            keys_with_tilde(item, found)
    return found


# ---------------------------------------------------------------- plain merge


def test_plain_merge_is_recursive_leaves_win_lists_replaced():
    base = {"a": {"b": 1, "c": [1, 2, 3], "d": {"e": 1}}, "f": "x"}
    override = {"a": {"b": 2, "c": [9], "d": {"g": 3}}, "h": None}
    assert merge_configs(base, override) == {
        "a": {"b": 2, "c": [9], "d": {"e": 1, "g": 3}},
        "f": "x",
        "h": None,
    }


def test_inputs_are_untouched_and_result_shares_nothing():
    base = copy.deepcopy(OPTIMIZERS)
    override = {"optimizers": {"trunk_optimizer~OVERRIDE~": {"Adam": {"lr": 0.1, "betas": [0.9, 0.99]}}}}
    base_before, override_before = copy.deepcopy(base), copy.deepcopy(override)
    result = merge_configs(base, override)
    assert base == base_before and override == override_before
    result["optimizers"]["trunk_optimizer"]["Adam"]["betas"].append(1)
    result["optimizers"]["embedder_optimizer"]["Adam"]["lr"] = 5
    assert base == base_before and override == override_before


def test_mapping_replaces_leaf_and_leaf_replaces_mapping():
    assert merge_configs({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert merge_configs({"a": {"b": 2}}, {"a": 1}) == {"a": 1}


def test_plain_merge_of_class_name_keeps_both_classes_as_pb_documented():
    # powerful-benchmarker's docs: this is why ~OVERRIDE~ exists
    result = merge_configs(OPTIMIZERS, {"optimizers": {"trunk_optimizer": {"Adam": {"lr": 0.01}}}})
    assert result["optimizers"]["trunk_optimizer"] == {
        "RMSprop": {"lr": 1e-6, "weight_decay": 1e-4},
        "Adam": {"lr": 0.01},
    }


# ---------------------------------------------------------------- ~OVERRIDE~


def test_override_top_level():
    result = merge_configs(OPTIMIZERS, {"optimizers~OVERRIDE~": {"trunk_optimizer": {"Adam": {"lr": 0.01}}}})
    assert result == {"optimizers": {"trunk_optimizer": {"Adam": {"lr": 0.01}}}}


def test_override_nested_keeps_siblings():
    result = merge_configs(OPTIMIZERS, {"optimizers": {"trunk_optimizer~OVERRIDE~": {"Adam": {"lr": 0.01}}}})
    assert result == {
        "optimizers": {
            "trunk_optimizer": {"Adam": {"lr": 0.01}},
            "embedder_optimizer": {"Adam": {"lr": 0.01}},
        }
    }


def test_override_at_depth_four():
    base = {"a": {"b": {"c": {"d": {"x": 1, "y": 2}, "e": 5}}}}
    result = merge_configs(base, {"a": {"b": {"c": {"d~OVERRIDE~": {"z": 3}}}}})
    assert result == {"a": {"b": {"c": {"d": {"z": 3}, "e": 5}}}}


def test_override_of_missing_key_adds_it_and_keeps_position_of_existing():
    result = merge_configs({"a": 1, "b": {"x": 1}, "c": 3}, {"b~OVERRIDE~": {"y": 2}, "d~OVERRIDE~": 4})
    assert result == {"a": 1, "b": {"y": 2}, "c": 3, "d": 4}
    assert list(result) == ["a", "b", "c", "d"]


def test_suffixes_inside_an_overriding_value_are_resolved():
    result = merge_configs({}, {"a~OVERRIDE~": {"b~OVERRIDE~": {"c": 1}, "d~DELETE~": {}}})
    assert result == {"a": {"b": {"c": 1}}}


def test_suffixes_in_base_are_resolved_too():
    assert merge_configs({"a~OVERRIDE~": {"b": 1}}, {}) == {"a": {"b": 1}}


# ---------------------------------------------------------------- ~APPLY~N


def test_apply_depth_1_merges_into_the_value_itself():
    result = merge_configs(TRAINER, {"trainer~APPLY~1": {"Extra": {"k": 1}}})
    assert result["trainer"] == {**TRAINER["trainer"], "Extra": {"k": 1}}


def test_apply_depth_2_sets_batch_size_whatever_the_trainer():
    result = merge_configs(TRAINER, {"trainer~APPLY~2": {"batch_size": 256}})
    assert result == {
        "trainer": {
            "MetricLossOnly": {
                "iterations_per_epoch": 100,
                "dataloader_num_workers": 2,
                "batch_size": 256,
                "loss_weights": None,
            }
        },
        "num_epochs_train": 1000,
    }


def test_apply_depth_3_sets_lr_in_all_optimizers():
    result = merge_configs(OPTIMIZERS, {"optimizers~APPLY~3": {"lr": 0.005}})
    assert result == {
        "optimizers": {
            "trunk_optimizer": {"RMSprop": {"lr": 0.005, "weight_decay": 1e-4}},
            "embedder_optimizer": {"Adam": {"lr": 0.005}},
        }
    }


def test_apply_replaces_any_value_standing_at_depth_n_and_leaves_shallower_leaves_alone():
    base = {
        "opt": {
            "a": {"SGD": None},
            "b": {"Adam": {"lr": 1}},
            "c": {"RMSprop": 3},
            "d": {"k": [1, 2]},
            "note": "keep",
        }
    }
    result = merge_configs(base, {"opt~APPLY~3": {"lr": 0.5}})
    # powerful-benchmarker 0.9 (easy-module-attribute-getter 0.9.41 merge_two_dicts) gives:
    assert result == {
        "opt": {
            "a": {"SGD": {"lr": 0.5}},
            "b": {"Adam": {"lr": 0.5}},
            "c": {"RMSprop": {"lr": 0.5}},
            "d": {"k": {"lr": 0.5}},
            "note": "keep",
        }
    }


def test_apply_sets_keys_one_level_deep_and_honours_their_suffixes():
    base = {"t": {"X": {"w": {"a": 1, "b": 2}, "gone": 1}}}
    result = merge_configs(base, {"t~APPLY~2": {"w": {"b": 3}, "gone~DELETE~": None}})
    # powerful-benchmarker 0.9 gives {"t": {"X": {"w": {"b": 3}}}}: w is replaced, not merged
    assert result == {"t": {"X": {"w": {"b": 3}}}}
    assert merge_configs(base, {"t~APPLY~2": {"w": {"b": 3}, "gone~REMOVE~": None}}) == result
    base = {"t": {"X": {"w": {"a": 1}, "v": 1}}}
    result = merge_configs(base, {"t~APPLY~2": {"w~OVERRIDE~": {"b": 3}, "v": {"c": 4}}})
    # powerful-benchmarker 0.9 gives:
    assert result == {"t": {"X": {"w": {"b": 3}, "v": {"c": 4}}}}


def test_apply_of_a_class_mapping_replaces_its_kwargs():
    result = merge_configs(OPTIMIZERS, {"optimizers~APPLY~2": {"RMSprop": {"lr": 0.1}}})
    # powerful-benchmarker 0.9 gives (weight_decay dropped, RMSprop added next to Adam):
    assert result == {
        "optimizers": {
            "trunk_optimizer": {"RMSprop": {"lr": 0.1}},
            "embedder_optimizer": {"Adam": {"lr": 0.01}, "RMSprop": {"lr": 0.1}},
        }
    }


def test_apply_nested_inside_a_plain_mapping():
    base = {"outer": copy.deepcopy(OPTIMIZERS)}
    result = merge_configs(base, {"outer": {"optimizers~APPLY~3": {"lr": 7}}})
    assert result["outer"]["optimizers"]["embedder_optimizer"] == {"Adam": {"lr": 7}}
    assert result["outer"]["optimizers"]["trunk_optimizer"]["RMSprop"]["lr"] == 7


def test_apply_errors():
    with pytest.raises(ConfigError, match="no key 'trainr'.*did you mean trainer"):
        merge_configs(TRAINER, {"trainr~APPLY~2": {"batch_size": 1}})
    with pytest.raises(ConfigError, match="no mapping at depth 4 below 'trainer'"):
        merge_configs(TRAINER, {"trainer~APPLY~4": {"batch_size": 1}})
    with pytest.raises(ConfigError, match="must be a mapping"):
        merge_configs(TRAINER, {"trainer~APPLY~2": 5})
    with pytest.raises(ConfigError, match="needs 'num_epochs_train' to be a mapping"):
        merge_configs(TRAINER, {"num_epochs_train~APPLY~1": {"a": 1}})


# ---------------------------------------------------------------- ~DELETE~ / ~REMOVE~


@pytest.mark.parametrize(
    "override",
    [
        {"optimizers": {"embedder_optimizer~DELETE~": {}}},
        {"optimizers": {"embedder_optimizer~REMOVE~": None}},
        {"optimizers": {"embedder_optimizer": "~DELETE~"}},
        {"optimizers": {"embedder_optimizer": "~REMOVE~"}},
        {"optimizers": {"embedder_optimizer~OVERRIDE~": "~DELETE~"}},
    ],
)
def test_delete_forms(override):
    assert merge_configs(OPTIMIZERS, override) == {
        "optimizers": {"trunk_optimizer": {"RMSprop": {"lr": 1e-6, "weight_decay": 1e-4}}}
    }


def test_delete_top_level_and_missing_key_is_a_no_op():
    assert merge_configs({"a": 1, "b": 2}, {"a~DELETE~": None, "zzz~REMOVE~": {}}) == {"b": 2}


def test_delete_removes_search_form_too():
    assert merge_configs({"alpha~BAYESIAN~": [0, 1], "x": 1}, {"alpha~DELETE~": {}}) == {"x": 1}


def test_delete_then_re_add_in_same_override():
    base = {"a": {"old": 1}}
    assert merge_configs(base, {"a~DELETE~": {}, "a": {"new": 2}}) == {"a": {"new": 2}}


# ---------------------------------------------------------------- bad suffixes


@pytest.mark.parametrize(
    "key, pattern",
    [
        ("alpha~FOO~", r"unknown suffix '~FOO~' in key 'loss.alpha~FOO~'"),
        ("alpha~override~", r"unknown suffix '~override~'.*did you mean ~OVERRIDE~"),
        ("alpha~APPLY~", r"~APPLY~ needs a depth"),
        ("alpha~SWAP~0", r"~SWAP~ needs a depth"),
        ("alpha~OVERRIDE~2", r"takes no number"),
        ("alpha~OVERRIDE~~DELETE~", r"more than one"),
        ("~OVERRIDE~", r"no name"),
    ],
)
def test_bad_suffix_errors_name_the_key_path(key, pattern):
    with pytest.raises(ConfigError, match=pattern) as caught:
        merge_configs({"loss": {"alpha": 1}}, {"loss": {key: {}}})
    if "unknown" in pattern:
        for suffix in VALID_SUFFIXES:
            assert suffix in str(caught.value)


def test_tilde_inside_a_name_is_not_a_suffix():
    assert merge_configs({}, {"home~dir": 1, "a~b~c": 2}) == {"home~dir": 1, "a~b~c": 2}


# ---------------------------------------------------------------- search keys


def test_search_key_replaces_plain_key_in_place_and_vice_versa():
    base = {"MS": {"alpha": 2, "beta": 50}}
    searched = merge_configs(base, {"MS": {"alpha~LOG_BAYESIAN~": [0.01, 100]}})
    assert searched == {"MS": {"alpha~LOG_BAYESIAN~": [0.01, 100], "beta": 50}}
    assert list(searched["MS"]) == ["alpha~LOG_BAYESIAN~", "beta"]
    concrete = merge_configs(searched, {"MS": {"alpha": 3}})
    assert concrete == {"MS": {"alpha": 3, "beta": 50}}
    assert list(concrete["MS"]) == ["alpha", "beta"]
    switched = merge_configs(searched, {"MS": {"alpha~BAYESIAN~": [0, 1]}})
    assert switched == {"MS": {"alpha~BAYESIAN~": [0, 1], "beta": 50}}


def test_result_has_no_suffixes_but_search_ones():
    override = {
        "optimizers~APPLY~3": {"lr": 0.1},
        "split_manager~SWAP~1": {"MLRCSplitManager": {}},
        "trainer~OVERRIDE~": {"X": {"y~DELETE~": 1, "z": 2, "w~CHOICE~": [1, 2]}},
        "transforms": {"eval~REMOVE~": {}},
    }
    result = merge_configs({**OPTIMIZERS, **SPLIT, **TRAINER, **TRANSFORMS}, override)
    assert keys_with_tilde(result) == ["w~CHOICE~"]
