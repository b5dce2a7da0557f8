"""An exp_config's config_files.yaml: the file lists its categories start from, replaced by lists
given on the command line; malformed files are one-line ConfigErrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmlbench.cli import build_parser, reproduced_configs
from dmlbench.config.files import exp_config_file_lists
from dmlbench.errors import ConfigError


def exp_config(tmp_path: Path, files_yaml: str) -> Path:
    folder = tmp_path / "car_x" / "configs"
    folder.mkdir(parents=True)
    (folder / "config_files.yaml").write_text(files_yaml)
    (folder / "config_general.yaml").write_text("batch_size: 48\n")
    return folder.parent


def resolve(*argv: str) -> dict:
    return reproduced_configs(build_parser().parse_known_args(list(argv))[0])


def test_the_folders_lists_apply_and_the_command_line_replaces_them(tmp_path: Path) -> None:
    folder = exp_config(
        tmp_path, "config_dataset: [default, with_cars196]\nconfig_general: [default, with_cars196]\n"
    )
    config = resolve("--reproduce_results", str(folder))
    assert config["config_dataset"]["dataset"] == {"Cars196": {}}
    assert (config["config_general"]["save_interval"], config["config_general"]["patience"]) == (5, 14)
    assert config["config_general"]["batch_size"] == 48  # the folder's own file on top
    config = resolve("--reproduce_results", str(folder), "--config_dataset", "[default, with_sop]")
    assert config["config_dataset"]["dataset"] == {"StanfordOnlineProducts": {}}
    assert config["config_general"]["save_interval"] == 5  # general still from the folder


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "config_datset: [default]\n",
            "unknown config category 'config_datset' \\(did you mean config_dataset\\?\\)",
        ),
        ("[default]\n", "the top level must be a mapping"),
        ("config_dataset: [default, ../x]\n", "is not a config name"),
    ],
)
def test_malformed_file_lists_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    folder = exp_config(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        exp_config_file_lists(folder / "configs")


def test_a_missing_file_named_in_the_list_says_which(tmp_path: Path) -> None:
    folder = exp_config(tmp_path, "config_dataset: [default, with_carz196]\n")
    with pytest.raises(ConfigError, match="no config named 'with_carz196'.*with_cars196"):
        resolve("--reproduce_results", str(folder))
