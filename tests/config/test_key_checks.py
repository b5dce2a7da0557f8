"""Every key of a config file is checked: nearest names, file and line; wrong-category keys."""

from __future__ import annotations

import pytest

from dmlbench.cli import main
from dmlbench.config.key_checks import check_file_keys, key_lines
from dmlbench.errors import ConfigError


def test_key_lines_are_one_based_and_nested(tmp_path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("# comment\nbatch_size: 8\ntransforms:\n  train:\n    Resize: {size: 4}\n")
    lines = key_lines(path)
    assert lines[("batch_size",)] == 2
    assert lines[("transforms",)] == 3
    assert lines[("transforms", "train")] == 4
    assert lines[("transforms", "train", "Resize")] == 5


def test_misspelt_key_names_the_file_line_and_nearest_name(tmp_path) -> None:
    path = tmp_path / "config_general.yaml"
    path.write_text("seed: 1\n\nnum_epoch_train: 3\n")
    with pytest.raises(
        ConfigError,
        match=rf"^{path}:3: unknown config key 'num_epoch_train'; "
        r"did you mean num_epochs_train\?",
    ):
        check_file_keys({"seed": 1, "num_epoch_train": 3}, "config_general", path)


def test_suffixes_are_stripped_and_wrong_category_is_named(tmp_path) -> None:
    check_file_keys({"loss_funcs~OVERRIDE~": {}}, "config_loss_and_miners")
    with pytest.raises(ConfigError, match="'batch_size' belongs in config_general files, not config_models"):
        check_file_keys({"batch_size": 4}, "config_models")


def test_transform_parts_are_fixed(tmp_path) -> None:
    path = tmp_path / "config_transforms.yaml"
    path.write_text("transforms:\n  train: {}\n  evaluation: {}\n")
    with pytest.raises(
        ConfigError, match=rf"{path}:3: transforms: unknown part 'evaluation'; did you mean eval\?"
    ):
        check_file_keys({"transforms": {"train": {}, "evaluation": {}}}, "config_transforms", path)


@pytest.mark.parametrize("where", ["exp_config", "root_config_folder"])
def test_cli_refuses_a_typo_in_any_config_file(tmp_path, capsys, where) -> None:
    if where == "exp_config":
        folder = tmp_path / "exp" / "configs"
        folder.mkdir(parents=True)
        (folder / "config_general.yaml").write_text("batch_size: 8\nnum_epoch_train: 3\n")
        argv = ["--reproduce_results", str(tmp_path / "exp")]
        path = folder / "config_general.yaml"
    else:
        folder = tmp_path / "cfg" / "config_general"
        folder.mkdir(parents=True)
        (folder / "mine.yaml").write_text("batch_size: 8\nnum_epoch_train: 3\n")
        argv = [
            "--experiment_name",
            "x",
            "--root_config_folder",
            str(tmp_path / "cfg"),
            "--config_general",
            "default",
            "mine",
        ]
        path = folder / "mine.yaml"
    code = main(argv + ["--root_experiment_folder", str(tmp_path / "logs")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: {path}:2: unknown config key 'num_epoch_train'; did you mean num_epochs_train?\n"
    assert not (tmp_path / "logs").exists()
