"""Command-line input errors are one line ending in a pointer to --help; --reproduce_results
finds exp_configs by name (./exp_configs first, then the shipped ones) and says where it looked."""

from __future__ import annotations

from pathlib import Path

from dmlbench.cli import main
from dmlbench.config.exp_config_lookup import SHIPPED_EXP_CONFIGS, find_exp_config


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    return err


def test_bad_flag_values_are_one_line_with_help(capsys) -> None:
    assert main(["--resume_training", "sometimes"]) == 2
    assert "invalid choice: 'sometimes'" in one_error_line(capsys)
    assert main(["--bayes_opt_iters", "many"]) == 2
    assert one_error_line(capsys).rstrip().endswith("--help")


def test_exp_configs_are_found_by_name_local_first(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_exp_config("demo") == SHIPPED_EXP_CONFIGS / "demo"
    assert find_exp_config("exp_configs/demo") == SHIPPED_EXP_CONFIGS / "demo"
    (tmp_path / "exp_configs" / "demo" / "configs").mkdir(parents=True)
    assert find_exp_config("demo") == Path("exp_configs") / "demo"
    (tmp_path / "a_file").write_text("x")
    assert main(["--reproduce_results", "a_file"]) == 2
    assert "that is a file" in one_error_line(capsys)
    assert main(["--reproduce_results", "no_such_config"]) == 2
    err = one_error_line(capsys)
    assert "exp_configs/no_such_config" in err and f"shipped in {SHIPPED_EXP_CONFIGS}: car_arcface" in err
