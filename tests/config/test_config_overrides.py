"""Command-line overrides: token joining, dotted keys, flag order, suffixes on the command line."""

import pytest

from dmlbench.config import merge_configs, parse_overrides
from dmlbench.errors import ConfigError

BASE = {
    "split_manager": {"ClassDisjointSplitManager": {"test_size": 0.5, "num_training_partitions": 4}},
    "optimizers": {
        "trunk_optimizer": {"RMSprop": {"lr": 1e-6, "momentum": 0.9}},
        "embedder_optimizer": {"RMSprop": {"lr": 1e-6, "momentum": 0.9}},
    },
    "loss_funcs": {"metric_loss": {"ContrastiveLoss": {"pos_margin": 0, "neg_margin": 1}}},
    "eval_batch_size": 32,
    "splits_to_eval": ["val"],
}


def test_brief_example():
    args = [
        "--loss_funcs~OVERRIDE~",
        "{metric_loss:",
        "{MultiSimilarityLoss:",
        "{alpha:",
        "2}}}",
        "--eval_batch_size",
        "64",
        "--optimizers.trunk_optimizer.RMSprop.lr",
        "1e-5",
    ]
    overrides = parse_overrides(args)
    assert overrides == {
        "loss_funcs~OVERRIDE~": {"metric_loss": {"MultiSimilarityLoss": {"alpha": 2}}},
        "eval_batch_size": 64,
        "optimizers": {"trunk_optimizer": {"RMSprop": {"lr": 1e-5}}},
    }
    assert type(overrides["optimizers"]["trunk_optimizer"]["RMSprop"]["lr"]) is float
    assert list(overrides) == ["loss_funcs~OVERRIDE~", "eval_batch_size", "optimizers"]


def test_every_suffix_on_the_command_line_end_to_end():
    args = [
        "--split_manager~SWAP~1",
        "{MLRCSplitManager:",
        "{}}",
        "--optimizers~APPLY~3",
        "{lr:",
        "3e-4}",
        "--optimizers",
        "{embedder_optimizer~DELETE~:",
        "{}}",
        "--loss_funcs",
        "{metric_loss~OVERRIDE~:",
        "{MultiSimilarityLoss:",
        "{alpha:",
        "2}}}",
        "--splits_to_eval",
        "[test]",
        "--eval_batch_size~REMOVE~",
        "null",
    ]
    result = merge_configs(BASE, parse_overrides(args))
    assert result == {
        "split_manager": {"MLRCSplitManager": {"test_size": 0.5, "num_training_partitions": 4}},
        "optimizers": {"trunk_optimizer": {"RMSprop": {"lr": 3e-4, "momentum": 0.9}}},
        "loss_funcs": {"metric_loss": {"MultiSimilarityLoss": {"alpha": 2}}},
        "splits_to_eval": ["test"],
    }


def test_multi_token_values_and_lists():
    overrides = parse_overrides(["--config_dataset", "[default,", "with_cars196]", "--x", "-3e-4"])
    assert overrides == {"config_dataset": ["default", "with_cars196"], "x": -3e-4}


def test_equals_form_and_plain_words():
    assert parse_overrides(["--dataset_root=/data/x", "--name", "cars_ms"]) == {
        "dataset_root": "/data/x",
        "name": "cars_ms",
    }


def test_dotted_key_with_a_suffix_in_the_middle():
    overrides = parse_overrides(["--optimizers.trunk_optimizer~OVERRIDE~.Adam.lr", "0.01"])
    assert merge_configs(BASE, overrides)["optimizers"] == {
        "trunk_optimizer": {"Adam": {"lr": 0.01}},
        "embedder_optimizer": {"RMSprop": {"lr": 1e-6, "momentum": 0.9}},
    }


def test_dotted_value_form_delete():
    result = merge_configs(BASE, parse_overrides(["--optimizers.embedder_optimizer", "~DELETE~"]))
    assert list(result["optimizers"]) == ["trunk_optimizer"]


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--eval_batch_size"], r"--eval_batch_size: no value given"),
        (["--a", "1", "--b"], r"--b: no value given"),
        (["64"], r"'64' has no --flag"),
        (["--loss_funcs", "{metric_loss:", "{X:", "1}"], r"--loss_funcs: cannot parse"),
        (["--optimizers~APLY~3", "{lr: 1}"], r"unknown suffix '~APLY~'.*did you mean ~APPLY~"),
        (["--optimizers..lr", "1"], r"empty key"),
        (["--a", "{b:1}"], r"--a: 'b:1'"),
    ],
)
def test_errors(args, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse_overrides(args)


def test_later_flag_wins_and_mappings_combine():
    assert parse_overrides(["--eval_batch_size", "64", "--eval_batch_size", "128"]) == {
        "eval_batch_size": 128
    }
    assert parse_overrides(["--o", "{a: 1, b: {c: 1}}", "--o", "{b: {d: 2}}", "--o.a", "5"]) == {
        "o": {"a": 5, "b": {"c": 1, "d": 2}}
    }


def apply_one_by_one(base, args):
    """The meaning of a flag sequence: each flag merged in turn."""
    flags, current = [], None
    for token in args:
        if token.startswith("--"):
            current = [token]
            flags.append(current)
        else:
            current.append(token)
    for flag in flags:
        base = merge_configs(base, parse_overrides(flag))
    return base


@pytest.mark.parametrize(
    "args",
    [
        ["--optimizers", "{x: 1}", "--optimizers~OVERRIDE~", "{y: 2}", "--optimizers", "{z: 3}"],
        ["--optimizers~APPLY~3", "{lr: 1}", "--optimizers~APPLY~3", "{momentum: 0}"],
        ["--optimizers~APPLY~2", "{RMSprop: {lr: 1}}", "--optimizers~APPLY~2", "{RMSprop: {momentum: 0}}"],
        [
            "--optimizers~APPLY~3",
            "{lr: 1}",
            "--optimizers~APPLY~3",
            "{lr~DELETE~: {}}",
            "--optimizers~APPLY~3",
            "{lr: 2}",
        ],
        [
            "--optimizers~OVERRIDE~",
            "{a: {B: {}}}",
            "--optimizers~APPLY~2",
            "{lr: 2}",
            "--optimizers~OVERRIDE~",
            "{c: {D: {}}}",
        ],
        ["--optimizers~APPLY~3", "{lr: 1}", "--optimizers", "{new: {SGD: {lr: 5}}}"],
        ["--optimizers", "{new: {SGD: {}}}", "--optimizers~DELETE~", "{}", "--optimizers", "{a: 1}"],
        ["--eval_batch_size", "5", "--eval_batch_size", "{a: 1}"],
        ["--split_manager~SWAP~1", "{MLRCSplitManager: {}}", "--split_manager~APPLY~2", "{test_size: 0.3}"],
        [
            "--loss_funcs.metric_loss.ContrastiveLoss.pos_margin~BAYESIAN~",
            "[0, 1]",
            "--loss_funcs.metric_loss.ContrastiveLoss.pos_margin",
            "0.2",
        ],
        [
            "--loss_funcs.metric_loss.ContrastiveLoss.pos_margin",
            "0.2",
            "--loss_funcs.metric_loss.ContrastiveLoss.pos_margin~BAYESIAN~",
            "[0, 1]",
        ],
        [
            "--optimizers",
            "{trunk_optimizer~OVERRIDE~: {Adam: {lr: 1}}}",
            "--optimizers",
            "{trunk_optimizer: {Adam: {eps: 1}}}",
        ],
    ],
)
def test_combined_flags_mean_the_same_as_flags_applied_one_by_one(args):
    assert merge_configs(BASE, parse_overrides(args)) == apply_one_by_one(BASE, args)


def test_order_that_one_mapping_cannot_express_is_an_error():
    with pytest.raises(ConfigError, match="given again.*one flag"):
        parse_overrides(
            ["--optimizers", "{a: 1}", "--optimizers~SWAP~1", "{X: {}}", "--optimizers", "{b: 2}"]
        )
    with pytest.raises(ConfigError, match="given again"):
        parse_overrides(["--s~SWAP~1", "{X: {}}", "--s~SWAP~1", "{Y: {}}"])
