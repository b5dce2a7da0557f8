"""Installed usage: build a wheel, install it into a fresh virtual environment (which sees the
site-packages of the environment running the tests, so torch & co. are not downloaded) and use it
from an unrelated folder: the demo by
name (shrunk to seconds), a user plugin by ``--plugin_paths``, ``python -m dmlbench``; the
project's plugins and split managers live under ``dmlbench.`` and nothing generic lands in
site-packages; a ``./plugins`` package in the working directory is never imported. ~1 min."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
SHRINK = [
    "--merge_argparse_when_resuming",
    "--num_epochs_train",
    "1",
    "--iterations_per_epoch",
    "2",
    "--batch_size",
    "16",
    "--check_untrained_accuracy",
    "false",
    "--dataset~OVERRIDE~",
    "{DemoShapes: {num_classes: 16, images_per_class: 8}}",
]

USER_PLUGIN = textwrap.dedent('''
    from pytorch_metric_learning.losses import MultiSimilarityLoss
    from dmlbench.registry import register

    @register("loss")
    class MyUserLoss(MultiSimilarityLoss):
        """A user's loss: counts its calls in a file to prove it ran."""
        def forward(self, *args, **kwargs):
            with open("user_loss_called.txt", "a") as f:
                f.write("x")
            return super().forward(*args, **kwargs)
''')


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"{command}\nstdout:{result.stdout[-3000:]}\nstderr:{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"  # a clean copy: no stale build/ folder of the checkout goes into the wheel
    source.mkdir()
    for name in ["pyproject.toml", "README.md", "run.py"]:
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "dmlbench", source / "dmlbench", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "exp_configs", source / "exp_configs", ignore=ignore)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(base / "dist"),
            str(source),
        ],
        base,
        env,
    )
    (wheel,) = (base / "dist").glob("dmlbench-*.whl")
    _run([sys.executable, "-m", "venv", str(base / "venv")], base, env)
    python = base / "venv" / "bin" / "python"
    _see_this_environment(python, base, env)
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], base, env)
    return base / "venv"


def _see_this_environment(python: Path, cwd: Path, env: dict[str, str]) -> None:
    """Let the new venv import torch & co. from the environment running the tests (a venv made
    as the README says, or the system's): a ``.pth`` file adds its site-packages folders after the
    venv's own (``--system-site-packages`` would give the base interpreter's, which lack them
    when the tests run in a venv). The wheel's dmlbench, in the venv's own site-packages, comes
    first."""
    import site

    folders = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd, env
    ).stdout.strip()
    lines = [f"import site; site.addsitedir({folder!r})" for folder in folders if Path(folder).is_dir()]
    (Path(purelib) / "zz_test_environment.pth").write_text("\n".join(lines) + "\n")


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_installed_layout_has_only_the_dmlbench_namespace(venv: Path, tmp_path: Path) -> None:
    code = (
        "import dmlbench, dmlbench.plugins.sdm, dmlbench.split_managers, importlib.util, sys, pathlib;"
        "site = pathlib.Path(dmlbench.__file__).parents[1];"
        "print(site / 'dmlbench' == pathlib.Path(dmlbench.__file__).parent, "
        "(site / 'plugins').exists(), (site / 'split_managers').exists(),"
        "(site / 'dmlbench' / 'exp_configs' / 'demo' / 'configs').is_dir(), 'venv' in str(site))"
    )
    out = _run([str(venv / "bin" / "python"), "-c", code], tmp_path, _env(venv)).stdout.split()
    assert out == ["True", "False", "False", "True", "True"]


def test_demo_and_user_plugin_from_another_folder(venv: Path, tmp_path: Path) -> None:
    env = _env(venv)
    # a generic ./plugins package in the working directory must never be imported
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "__init__.py").write_text("raise RuntimeError('cwd plugins imported')\n")
    (tmp_path / "my_plugin.py").write_text(USER_PLUGIN)
    result = _run(
        [
            "dmlbench",
            "--reproduce_results",
            "demo",
            *SHRINK,
            "--plugin_paths",
            "[my_plugin.py]",
            "--loss_funcs~OVERRIDE~",
            "{metric_loss: {MyUserLoss: {}}}",
        ],
        tmp_path,
        env,
    )
    assert "MAP@R" in result.stdout + result.stderr
    assert (tmp_path / "logs" / "demo" / "meta" / "report.md").exists()
    assert len((tmp_path / "user_loss_called.txt").read_text()) >= 4  # 4 folds x 2 iterations
    saved = (tmp_path / "logs" / "demo" / "configs" / "config_general.yaml").read_text()
    assert str(tmp_path / "my_plugin.py") in saved  # saved absolute: resume finds it from anywhere
    # python -m dmlbench is the same command; exp_configs/NAME also finds the shipped entry
    result = _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "dmlbench",
            "--reproduce_results",
            "exp_configs/demo",
            "--experiment_name",
            "demo2",
            *SHRINK,
        ],
        tmp_path,
        env,
    )
    assert (tmp_path / "logs" / "demo2" / "meta" / "report.md").exists()
    # the installed explanation command, on the installed run (the report already has two)
    assert list((tmp_path / "logs" / "demo2" / "meta" / "plots").glob("explain_query*.png"))
    python = str(venv / "bin" / "python")
    _run(
        [python, "-m", "dmlbench.explain", "--experiment_name", "demo2", "--query", "0", "--top", "2"],
        tmp_path,
        env,
    )
    assert (tmp_path / "logs" / "demo2" / "meta" / "explain" / "test_query0.json").exists()


def test_unknown_user_class_without_plugin_paths_is_one_line(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "my_plugin.py").write_text(USER_PLUGIN)
    result = subprocess.run(
        [
            "dmlbench",
            "--reproduce_results",
            "demo",
            *SHRINK,
            "--loss_funcs~OVERRIDE~",
            "{metric_loss: {MyUserLoss: {}}}",
        ],
        cwd=tmp_path,
        env=_env(venv),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "MyUserLoss" in result.stderr
