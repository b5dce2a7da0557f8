"""powerful-benchmarker 0.9's keys and values, written as its documentation writes them, resolved by
dmlbench (docs/protocol.md, "Coming from powerful-benchmarker")."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dmlbench.cli import main
from dmlbench.config.pb_values import pb_string_to_value
from dmlbench.config.pb_vocabulary import translate_fragment
from dmlbench.errors import ConfigError


def dry_run(argv: list[str], tmp_path: Path, capsys, monkeypatch) -> tuple[int, dict, str]:
    monkeypatch.chdir(tmp_path)
    code = main(["--experiment_name", "x", *argv, "--dry_run"])
    out, err = capsys.readouterr()
    assert not (tmp_path / "logs").exists()
    flat = (
        {k: v for values in (yaml.safe_load(out) or {}).values() for k, v in values.items()}
        if code == 0
        else {}
    )
    return code, flat, err


def test_trainer_options_become_dmlbench_keys() -> None:
    fragment = {
        "trainer": {
            "MetricLossOnly": {
                "iterations_per_epoch": 50,
                "dataloader_num_workers": 4,
                "batch_size": 64,
                "freeze_trunk_batchnorm": False,
                "label_hierarchy_level": 0,
                "loss_weights": None,
                "set_min_label_to_zero": True,
            }
        },
        "patience": 3,
    }
    translated, notices = translate_fragment(fragment)
    assert translated == {
        "iterations_per_epoch": 50,
        "dataloader_num_workers": 4,
        "batch_size": 64,
        "freeze_trunk_batchnorm": False,
        "loss_weights": {},
        "patience": 3,
    }
    assert len(notices) == 7  # one per translated or dropped option


def test_apply_and_swap_forms() -> None:
    assert translate_fragment({"trainer~APPLY~2": {"batch_size": 256}})[0] == {"batch_size": 256}
    assert translate_fragment({"tester~APPLY~2": {"batch_size": 16}})[0] == {"eval_batch_size": 16}
    assert translate_fragment({"trainer~SWAP~1": {"MetricLossOnly": None}})[0] == {}
    searched = translate_fragment({"trainer~APPLY~2": {"batch_size~INT_BAYESIAN~": [16, 64]}})[0]
    assert searched == {"batch_size~INT_BAYESIAN~": [16, 64]}


@pytest.mark.parametrize(
    ("fragment", "feature"),
    [
        ({"trainer~SWAP~1": {"CascadedEmbeddings": None}}, "cascaded embeddings"),
        ({"trainer~SWAP~1": {"DeepAdversarialMetricLearning": None}}, "DAML"),
        ({"trainer~SWAP~1": {"UnsupervisedEmbeddingsUsingAugmentations": None}}, "unsupervised training"),
        ({"layers_to_extract": ["Mixed_6e", "fc"]}, "cascaded embeddings"),
        ({"api_parser": {"APIDeepAdversarialMetricLearning": {}}}, "DAML"),
    ],
)
def test_features_dmlbench_lacks_are_refused_by_name(fragment, feature) -> None:
    with pytest.raises(ConfigError, match=feature):
        translate_fragment(fragment)


def test_an_option_dmlbench_cannot_honour_is_named() -> None:
    with pytest.raises(ConfigError, match=r"label_hierarchy_level: 1 is not supported"):
        translate_fragment({"trainer~APPLY~2": {"label_hierarchy_level": 1}})
    with pytest.raises(ConfigError, match=r"tester~APPLY~2\.pca: 64 is not supported"):
        translate_fragment({"tester~APPLY~2": {"pca": 64}})


def test_pb_string_conversion_as_easy_module_attribute_getter() -> None:
    # easy-module-attribute-getter 0.9.41, try_convert_to_list_of_numbers: int, else float, else kept
    assert pb_string_to_value("0.16 1") == [0.16, 1]
    assert pb_string_to_value("256") == 256
    assert pb_string_to_value("bilinear") == "bilinear"


def test_documented_command_lines(tmp_path, capsys, monkeypatch) -> None:
    code, flat, err = dry_run(["--trainer~APPLY~2", "{batch_size:", "256}"], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    assert flat["batch_size"] == 256
    assert "trainer~APPLY~2.batch_size -> batch_size" in err
    code, flat, err = dry_run(
        ["--config_general", "[default,", "with_256_batch]"], tmp_path, capsys, monkeypatch
    )
    assert (code, flat["batch_size"]) == (0, 256)
    code, flat, err = dry_run(
        ["--config_eval", "[default,", "with_32_workers]"], tmp_path, capsys, monkeypatch
    )
    assert (code, flat["eval_dataloader_num_workers"], flat["dataloader_num_workers"]) == (0, 32, 2)


def test_a_pb_folder_is_translated(tmp_path, capsys, monkeypatch) -> None:
    configs = tmp_path / "exp" / "configs"
    configs.mkdir(parents=True)
    (configs / "config_models.yaml").write_text(
        "models:\n  trunk:\n    bninception:\n      pretrained: imagenet\n"
        "  embedder:\n    MLP:\n      layer_sizes: [64]\n"
    )
    (configs / "config_dataset.yaml").write_text(
        "dataset:\n  Cars196:\nsplits_to_eval: [val, test]\nsplit_manager:\n  ClassDisjointSplitManager:\n"
        "    test_size: 0.5\n    test_start_idx: 0.5\n    num_training_partitions: 4\n"
        "    num_training_sets: 4\n    hierarchy_level: 0\n    data_and_label_getter_keys: [data, label]\n"
    )
    (configs / "config_transforms.yaml").write_text(
        "transforms:\n  train:\n    RandomResizedCrop:\n      scale: 0.16 1\n      ratio: 0.75 1.33\n"
        "      size: 227\n  eval:\n    CenterCrop:\n      size: 227\n"
    )
    code, flat, err = dry_run(["--reproduce_results", "exp"], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    assert flat["models"] == {
        "trunk": {"BNInception": {"pretrained": True}},
        "embedder": {"MLP": {"layer_sizes": [64]}},
    }
    assert flat["dataset"] == {"Cars196": None}
    assert flat["splits_to_eval"] == ["val", "test"]
    assert flat["split_manager"] == {
        "ClassDisjointSplitManager": {
            "test_size": 0.5,
            "test_start_idx": 0.5,
            "num_training_partitions": 4,
            "num_training_sets": 4,
        }
    }
    crop = flat["transforms"]["train"]["RandomResizedCrop"]
    assert crop == {"scale": [0.16, 1], "ratio": [0.75, 1.33], "size": 227}
    assert flat["transforms"]["eval"] == {"CenterCrop": {"size": 227}}  # replaced whole, as in PB


def test_a_wrong_value_is_named_before_the_folder_exists(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [
        "--experiment_name",
        "x",
        "--loss_funcs~OVERRIDE~",
        "{metric_loss:",
        "{MultiSimilarityLoss:",
        "{alpha:",
        "two}}}",
    ]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: loss_funcs.metric_loss.MultiSimilarityLoss.alpha: expected a number, got 'two'"
    )
    assert not (tmp_path / "logs").exists()
    code, _, err = dry_run(["--transforms~APPLY~3", "{scale:", "big}"], tmp_path, capsys, monkeypatch)
    assert code == 2
    code, _, err = dry_run(["--optimizers~APPLY~3", "{lr:", "fast}"], tmp_path, capsys, monkeypatch)
    assert code == 2 and "optimizers.trunk_optimizer.RMSprop.lr: expected float" in err


def test_splits_to_eval_during_training(tmp_path, capsys, monkeypatch) -> None:
    code, flat, err = dry_run(["--splits_to_eval", "[train,", "val,", "test]"], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    assert flat["splits_to_eval"] == ["train", "val", "test"]


def test_dry_run_of_a_search_shows_its_ranges(tmp_path, capsys, monkeypatch) -> None:
    argv = [
        "--loss_funcs~OVERRIDE~",
        "{metric_loss:",
        "{ContrastiveLoss:",
        "{neg_margin~BAYESIAN~:",
        "[0, 1]}}}",
    ]
    code, flat, err = dry_run([*argv, "--bayes_opt_iters", "4"], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    assert flat["loss_funcs"] == {"metric_loss": {"ContrastiveLoss": {"neg_margin~BAYESIAN~": [0, 1]}}}


def test_train_with_classifier_becomes_the_classifier_plugin(tmp_path, capsys, monkeypatch) -> None:
    configs = tmp_path / "exp" / "configs"
    configs.mkdir(parents=True)
    (configs / "config_general.yaml").write_text(
        "trainer:\n  TrainWithClassifier:\n    batch_size: 32\n    iterations_per_epoch: 100\n"
        "    loss_weights:\n      metric_loss: 1\n      classifier_loss: 0.5\n"
    )
    (configs / "config_models.yaml").write_text(
        "models:\n  trunk:\n    bninception:\n      pretrained: imagenet\n  embedder:\n    MLP:\n"
        "      layer_sizes: [128]\n  classifier:\n    MLP:\n      layer_sizes: []\n"
    )
    (configs / "config_loss_and_miners.yaml").write_text(
        "loss_funcs:\n  metric_loss:\n    ContrastiveLoss:\n  classifier_loss:\n    CrossEntropyLoss:\n"
        "sampler:\n  MPerClassSampler:\n    m: 4\nmining_funcs: {}\n"
    )
    (configs / "config_optimizers.yaml").write_text(
        "optimizers:\n"
        + "".join(
            f"  {part}_optimizer:\n    RMSprop:\n      lr: 0.000001\n"
            for part in ("trunk", "embedder", "classifier")
        )
    )
    code, flat, err = dry_run(["--reproduce_results", "exp"], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    assert set(flat["models"]) == {"trunk", "embedder"}
    assert flat["loss_funcs"] == {"metric_loss": {"ContrastiveLoss": None}}
    assert flat["loss_weights"] == {"metric_loss": 1}
    assert flat["training_plugins"] == {
        "Classifier": {"layer_sizes": [], "weight": 0.5, "loss": {"CrossEntropyLoss": None}}
    }


def test_the_classifier_plugin_adds_the_weighted_classification_loss() -> None:
    import torch

    from plugins.classifier_head import Classifier

    torch.manual_seed(0)
    plugin = Classifier(num_classes=3, embedding_size=4, layer_sizes=[], weight=0.5)
    (linear,) = [m for m in plugin.modules()["classifier"].modules() if isinstance(m, torch.nn.Linear)]
    embeddings, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    inputs = type("Inputs", (), {"embeddings": embeddings, "labels": labels})()
    logits = embeddings @ linear.weight.T + linear.bias
    expected = -0.5 * torch.log_softmax(logits, dim=1)[torch.arange(6), labels].mean()
    assert plugin.loss_terms(inputs, None)["classifier_loss"].item() == pytest.approx(
        expected.item(), abs=1e-6
    )


def test_argument_values_against_signatures() -> None:
    from pytorch_metric_learning.losses import MultiSimilarityLoss, TripletMarginLoss
    from torch.optim import RMSprop

    from dmlbench.argument_types import expected_type

    assert expected_type(MultiSimilarityLoss, "alpha", "two") == "a number"
    assert expected_type(MultiSimilarityLoss, "alpha", 2.5) is None
    assert expected_type(TripletMarginLoss, "triplets_per_anchor", 5) is None  # "all" or a count
    assert expected_type(TripletMarginLoss, "swap", "yes") == "true or false"
    assert expected_type(RMSprop, "lr", "fast") is not None  # annotated float | Tensor
    assert expected_type(RMSprop, "lr", 1e-6) is None
