"""Values checked by type and range; flags without effect; --splits_to_eval forms; search flags."""

from __future__ import annotations

import argparse

import pytest
import torch

from dmlbench.config.defaults import builtin_defaults
from dmlbench.config.flag_checks import check_mode_flags, parse_splits_to_eval
from dmlbench.config.value_checks import check_device, check_pretrained_weights, is_int, validate_values
from dmlbench.errors import ConfigError
from dmlbench.models.bninception import BNInception
from dmlbench.models.trunks import TorchvisionTrunk
from dmlbench.search.settings import check_executor_flags


def settings(**changes):
    values = dict(builtin_defaults())
    values.update(changes)
    return values


def test_the_defaults_pass() -> None:
    validate_values(settings())


def test_bool_is_not_an_int() -> None:
    assert is_int(3) and not is_int(True) and not is_int(3.0)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("num_epochs_train", True, "num_epochs_train: expected a positive integer, got True"),
        ("batch_size", 0, "batch_size: expected a positive integer, got 0"),
        ("eval_batch_size", -4, "eval_batch_size: expected a positive integer, got -4"),
        ("iterations_per_epoch", 2.5, "iterations_per_epoch: expected a positive integer, got 2.5"),
        ("patience", -1, "patience: expected an integer >= 0, got -1"),
        ("dataloader_num_workers", "two", "dataloader_num_workers: expected an integer >= 0, got 'two'"),
        ("eval_chunk_size", 0, "eval_chunk_size: expected a positive integer, got 0"),
        ("channels_last", 1, "channels_last: expected true or false, got 1"),
        ("mixed_precision", "fp32", "mixed_precision: expected null, bf16 or fp16, got 'fp32'"),
        ("eval_recall_at", [1, 0], "eval_recall_at: expected a list of positive integers"),
        (
            "eval_metric_for_best_epoch",
            "mean_average_precision",
            "'mean_average_precision' is not a validation metric; did you mean mean_average_precision_at_r?",
        ),
        ("splits_to_eval", ["valid"], "splits_to_eval: expected a non-empty list of train, val, test"),
        ("device", "gpu", "device: 'gpu' is not a device"),
        (
            "models",
            {"trunk": {"SmallConvNet": {}}, "embedder": {"MLP": {"layer_sizes": [0]}}},
            r"models.embedder.MLP.layer_sizes: expected positive integer\(s\), got \[0\]",
        ),
        (
            "models",
            {"trunk": {"SmallConvNet": {}}, "embedder": {"NormalizedEmbedder": {"embedding_size": True}}},
            "embedding_size: expected positive integer",
        ),
    ],
)
def test_bad_values_fail_with_the_key(key, value, message) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_values(settings(**{key: value}))


def test_metric_choices_follow_recall_at_and_binarize() -> None:
    validate_values(settings(eval_recall_at=[1, 4], eval_metric_for_best_epoch="recall_at_4"))
    validate_values(settings(eval_binarize=True, eval_metric_for_best_epoch="binary_precision_at_1"))
    with pytest.raises(ConfigError, match="recall_at_2"):
        validate_values(settings(eval_recall_at=[1], eval_metric_for_best_epoch="recall_at_2"))


def test_a_cuda_device_must_exist() -> None:
    check_device("cpu")
    check_device("auto")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ConfigError, match=f"'cuda:{count}' does not exist here"):
        check_device(f"cuda:{count}")


def test_pretrained_weights_not_on_disk_name_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=r"bn_inception-52deb4733\.pth not found .*nothing is downloaded"):
        check_pretrained_weights(BNInception, {})
    with pytest.raises(ConfigError, match=r"resnet18-f37072fd\.pth not found"):
        check_pretrained_weights(TorchvisionTrunk, {"name": "resnet18", "pretrained": True})
    check_pretrained_weights(BNInception, {"pretrained": False})
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "bn_inception-52deb4733.pth").write_bytes(b"")
    check_pretrained_weights(BNInception, {})


def args(**changes):
    values = dict(
        evaluate=False,
        evaluate_ensemble=False,
        splits_to_eval=None,
        resume_training=None,
        reproduce_results=None,
        merge_argparse_when_resuming=False,
        reproductions=0,
        trial_executor=None,
        max_parallel_trials=None,
        sobol_trials=None,
    )
    values.update(changes)
    return argparse.Namespace(**values)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"reproductions": 3}, "--reproductions has no effect without a search"),
        ({"trial_executor": "local"}, "--trial_executor has no effect without a search"),
        ({"sobol_trials": 2}, "--sobol_trials has no effect without a search"),
        ({"merge_argparse_when_resuming": True}, "--merge_argparse_when_resuming has no effect"),
    ],
)
def test_flags_without_effect_are_errors(changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        check_mode_flags(args(**changes), searching=False)


def test_search_flags_are_fine_in_a_search() -> None:
    check_mode_flags(args(reproductions=3, sobol_trials=2), searching=True)


@pytest.mark.parametrize(
    "values, expected",
    [
        (None, ["test"]),
        (["test"], ["test"]),
        (["val", "test"], ["val", "test"]),
        (["[val,", "test]"], ["val", "test"]),
        (["[val, test]"], ["val", "test"]),
        (["val,test"], ["val", "test"]),
    ],
)
def test_splits_to_eval_forms(values, expected) -> None:
    assert parse_splits_to_eval(values) == expected


def test_an_unknown_split_is_named() -> None:
    with pytest.raises(ConfigError, match="'validation' is not a split; choose from train, val, test"):
        parse_splits_to_eval(["validation"])


@pytest.mark.parametrize(
    "executor, parallel, sobol, message",
    [
        ("locale", None, None, "--trial_executor 'locale' is unknown; did you mean local"),
        ("local_parallel", 0, None, "--max_parallel_trials must be >= 1, got 0"),
        ("local", 2, None, "--trial_executor local runs one trial at a time"),
        ("local", None, 0, r"--sobol_trials must be between 1 and --bayes_opt_iters \(4\), got 0"),
        ("local", None, 5, "got 5"),
    ],
)
def test_search_flags_are_checked(executor, parallel, sobol, message) -> None:
    with pytest.raises(ConfigError, match=message):
        check_executor_flags(executor, parallel, sobol, 4)
