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


def test_mistyped_flags_get_the_nearest_flag_or_key_whatever_else_is_given(capsys) -> None:
    for others in ([], ["--evaluate"], ["--reproduce_results", "demo"], ["--experiment_name", "x"]):
        assert main(["--evalute", *others]) == 2
        assert "--evalute: unknown flag or config key 'evalute'; did you mean --evaluate?" in one_error_line(
            capsys
        )
        assert main(["--experiment-name", "x", *others]) == 2
        assert "did you mean --experiment_name? (flags and config keys are written with underscores)" in (
            one_error_line(capsys)
        )
    assert main(["--batch_sise", "3"]) == 2  # a config key
    assert "did you mean --batch_size" in one_error_line(capsys)
    assert main(["--num-epochs-train", "3"]) == 2
    assert "did you mean --num_epochs_train?" in one_error_line(capsys)
    assert main(["--zzz_qqq", "3"]) == 2
    assert "--zzz_qqq: unknown flag or config key 'zzz_qqq'; see --help" in one_error_line(capsys)


def test_help_and_argument_errors_import_no_torch() -> None:
    """Start-up cost: --help and bad flags answer before torch, torchvision, pytorch-metric-learning
    or Ax are imported (bench/startup_bench.py measures the time)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dmlbench.cli import main\n"
        "try:\n"
        "    code = main(sys.argv[1:])\n"
        "except SystemExit as exit_:\n"
        "    code = exit_.code\n"
        "heavy = [m for m in ('torch', 'torchvision', 'pytorch_metric_learning', 'ax') if m in sys.modules]\n"
        "print(code, heavy, file=sys.stderr)\n"
    )
    for argv, expected in (
        (["--help"], "0 []"),
        (["--evalute"], "2 []"),
        (["--experiment-name", "x"], "2 []"),
    ):
        result = subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120
        )
        assert result.stderr.splitlines()[-1] == expected, result.stderr
