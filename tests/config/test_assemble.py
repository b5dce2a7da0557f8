"""The replacement rule of --reproduce_results (dmlbench/config/assemble.py), on hand-written folders:
a category file replaces each key it sets whole, as powerful-benchmarker; the rest stays."""

from __future__ import annotations

from pathlib import Path

from dmlbench.config.assemble import assemble_config, replacement_files
from dmlbench.config.defaults import BUILTIN_CONFIG_DIR


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    configs = tmp_path / "exp" / "configs"
    configs.mkdir(parents=True)
    for name, text in files.items():
        (configs / f"{name}.yaml").write_text(text)
    return tmp_path / "exp"


def test_a_category_file_replaces_the_keys_it_sets(tmp_path) -> None:
    exp = folder(
        tmp_path, {"config_optimizers": "optimizers:\n  trunk_optimizer:\n    Adam:\n      lr: 0.1\n"}
    )
    config, _ = assemble_config({}, [BUILTIN_CONFIG_DIR], replacement_files(exp))
    # the default's embedder_optimizer is gone: the file's optimizers are the whole value
    assert config["config_optimizers"]["optimizers"] == {"trunk_optimizer": {"Adam": {"lr": 0.1}}}
    assert config["config_optimizers"]["lr_schedulers"] == {}  # a key the file leaves out: the default


def test_file_lists_hold_for_the_other_categories_and_under_the_file(tmp_path) -> None:
    exp = folder(tmp_path, {"config_general": "patience: 3\n"})
    lists = {"config_general": ["default", "with_cars196"], "config_dataset": ["default", "with_cars196"]}
    config, _ = assemble_config(lists, [BUILTIN_CONFIG_DIR], replacement_files(exp))
    assert config["config_dataset"]["dataset"] == {"Cars196": {}}  # no file: the list
    assert config["config_general"]["patience"] == 3  # the file's key
    assert config["config_general"]["save_interval"] == 5  # a key it leaves out: the list's (with_cars196)


def test_suffixed_keys_act_on_the_listed_value(tmp_path) -> None:
    exp = folder(tmp_path, {"config_optimizers": "optimizers~APPLY~3:\n  lr: 0.5\n"})
    config, _ = assemble_config({}, [BUILTIN_CONFIG_DIR], replacement_files(exp))
    optimizers = config["config_optimizers"]["optimizers"]
    assert {name: spec["RMSprop"]["lr"] for name, spec in optimizers.items()} == {
        "trunk_optimizer": 0.5,
        "embedder_optimizer": 0.5,
    }


def test_pb_keys_move_to_dmlbench_categories_with_a_note(tmp_path) -> None:
    exp = folder(
        tmp_path,
        {
            "config_general": "trainer:\n  MetricLossOnly:\n    batch_size: 64\n    freeze_trunk_batchnorm: false\n"
        },
    )
    config, notices = assemble_config({}, [BUILTIN_CONFIG_DIR], replacement_files(exp))
    assert config["config_general"]["batch_size"] == 64
    assert config["config_models"]["freeze_trunk_batchnorm"] is False
    assert "trainer" not in config["config_general"]
    assert len(notices) == 2
