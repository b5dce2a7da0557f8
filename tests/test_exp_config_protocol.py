"""Every exp_config carries what its published number depends on: the data set its name says
and the protocol's split manager, resolved exactly as ``python run.py --reproduce_results
exp_configs/<name>`` resolves it; the READMEs' commands resolve to the same.

Expected values come from the names (``car_`` -> Cars196, an MLRC loss -> MLRCSplitManager), a
table written here, never from the configs themselves.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from dmlbench.cli import apply_overrides, build_parser, reproduced_configs
from dmlbench.config.overrides import parse_overrides
from dmlbench.config.yaml_io import load_yaml_file

ROOT = Path(__file__).resolve().parents[1]
EXP_CONFIGS = ROOT / "exp_configs"
NAMES = sorted(path.name for path in EXP_CONFIGS.iterdir() if (path / "configs").is_dir())

#: name prefix -> the data set class it must run on
DATASET_OF_PREFIX = {
    "cub": "CUB200",
    "car": "Cars196",
    "sop": "StanfordOnlineProducts",
    "inshop": "InShop",
    "inaturalist": "INaturalist",
    "inat": "INaturalist",
}
#: MLRC's losses (Musgrave et al., ECCV 2020): these exp_configs run the MLRC protocol
MLRC_LOSSES = {
    "contrastive",
    "triplet",
    "ntxent",
    "proxy_nca",
    "margin",
    "margin_per_class",
    "normalized_softmax",
    "cosface",
    "arcface",
    "fastap",
    "snr",
    "ms",
    "ms_miner",
    "softtriple",
}
MLRC_SPLIT = {
    "MLRCSplitManager": {
        "test_size": 0.5,
        "test_start_idx": 0.5,
        "num_training_partitions": 4,
        "num_training_sets": 4,
    }
}
#: (save_interval, patience) of MLRC's validation schedule per data set
MLRC_SCHEDULE = {"CUB200": (2, 9), "Cars196": (5, 14), "StanfordOnlineProducts": (20, 39)}


def resolve(argv: list[str]) -> dict[str, dict[str, Any]]:
    """The config ``python run.py <argv>`` runs (the steps of dmlbench.cli.dispatch.run before training)."""
    args, unknown = build_parser().parse_known_args(argv)
    config = reproduced_configs(args)
    overrides = parse_overrides(unknown)
    return apply_overrides(config, overrides) if overrides else config


def split_prefix(name: str) -> tuple[str | None, str]:
    prefix, _, method = name.partition("_")
    return (prefix, method) if prefix in DATASET_OF_PREFIX else (None, name)


def expected_split_manager(method: str) -> dict[str, Any] | None:
    """The split manager a method's published protocol uses; None for a method not listed here."""
    if method in MLRC_LOSSES or method.endswith("_sdm"):
        return MLRC_SPLIT
    if method == "classification":  # Zhai & Wu: the data set's own train/test (query/gallery) split
        return {"PredefinedSplitManager": {}}
    return None


def declares_split_manager(name: str) -> bool:
    """Whether the exp_config itself (its config_dataset.yaml or a non-default file it lists) sets one."""
    configs = EXP_CONFIGS / name / "configs"
    sources = [configs / "config_dataset.yaml"]
    listed = load_yaml_file(configs / "config_files.yaml") if (configs / "config_files.yaml").exists() else {}
    sources += [
        ROOT / "dmlbench" / "configs" / "config_dataset" / f"{file}.yaml"
        for file in (listed or {}).get("config_dataset", [])
        if file != "default"
    ]
    for path in sources:
        if path.exists() and any(
            str(key).split("~")[0] == "split_manager" for key in load_yaml_file(path) or {}
        ):
            return True
    return False


@pytest.mark.parametrize("name", [name for name in NAMES if split_prefix(name)[0]])
def test_exp_config_runs_its_data_set_and_protocol(name: str) -> None:
    prefix, method = split_prefix(name)
    config = resolve(["--reproduce_results", str(EXP_CONFIGS / name)])
    dataset = config["config_dataset"]["dataset"]
    assert list(dataset) == [DATASET_OF_PREFIX[prefix]], f"{name} runs on {list(dataset)}"
    split_manager = config["config_dataset"]["split_manager"]
    expected = expected_split_manager(method)
    if expected is None:  # another method's exp_config: it must choose its protocol, not inherit one
        assert declares_split_manager(name), f"{name} does not say which split manager its paper uses"
    else:
        assert split_manager == expected, f"{name}: {split_manager}"
    if expected == MLRC_SPLIT and DATASET_OF_PREFIX[prefix] in MLRC_SCHEDULE:
        general = config["config_general"]
        assert (general["save_interval"], general["patience"]) == MLRC_SCHEDULE[DATASET_OF_PREFIX[prefix]]


def sdm_readme_command(name: str) -> list[str]:
    """The SDM README's command line (written for powerful-benchmarker): data set by file lists."""
    command = [
        "--reproduce_results",
        f"exp_configs/{name}",
        "--experiment_name",
        name,
        "--merge_argparse_when_resuming",
        "--split_manager~SWAP~1",
        "{MLRCSplitManager: {}}",
    ]
    with_file = {"car": "with_cars196", "sop": "with_sop"}.get(name.split("_")[0])
    if with_file:
        command += [
            "--config_dataset",
            f"[default, {with_file}]",
            "--config_general",
            f"[default, {with_file}]",
        ]
    return command


@pytest.mark.parametrize(
    "name", [n for n in NAMES if expected_split_manager(split_prefix(n)[1]) == MLRC_SPLIT]
)
def test_the_papers_long_command_line_resolves_to_the_same_config(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert resolve(sdm_readme_command(name)) == resolve(["--reproduce_results", f"exp_configs/{name}"])


def readme_commands() -> list[tuple[str, list[str]]]:
    """``python run.py --reproduce_results ...`` commands in the READMEs' code blocks."""
    commands = []
    for readme in [
        ROOT / "README.md",
        EXP_CONFIGS / "README.md",
        *sorted(ROOT.glob("dmlbench/plugins/*/README.md")),
    ]:
        text = readme.read_text().replace("\\\n", " ")
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
            for line in block.splitlines():
                line = line.strip()
                if line.startswith("python run.py") and "--reproduce_results exp_configs/" in line:
                    commands.append((readme.name, shlex.split(line, comments=True)[2:]))
    return commands


def test_the_readmes_have_reproduce_commands() -> None:
    assert len(readme_commands()) >= 5


@pytest.mark.parametrize(
    "where,argv", readme_commands(), ids=lambda value: value if isinstance(value, str) else ""
)
def test_readme_commands_resolve_to_the_published_protocol(
    where: str, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    name = Path(argv[argv.index("--reproduce_results") + 1]).name
    prefix, method = split_prefix(name)
    config = resolve(argv)
    if prefix is not None:
        assert list(config["config_dataset"]["dataset"]) == [DATASET_OF_PREFIX[prefix]], (where, argv)
    expected = expected_split_manager(method)
    if expected is not None:
        assert config["config_dataset"]["split_manager"] == expected, (where, argv)
