"""The README's search on the demo runs as written (shrunk: fewer trials, epochs and images, so
that it takes seconds) and writes the search report it points to."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from dmlbench.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"
SHRINK = [
    "--bayes_opt_iters",
    "2",
    "--num_epochs_train",
    "1",
    "--iterations_per_epoch",
    "2",
    "--batch_size",
    "16",
    "--check_untrained_accuracy",
    "false",
    "--eval_retrieval_examples",
    "0",
    "--dataset~OVERRIDE~",
    "{DemoShapes: {num_classes: 16, images_per_class: 8}}",
]


def readme_search_command() -> list[str]:
    text = README.read_text().replace("\\\n", " ")
    (line,) = [
        line.strip()
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
        if "--bayes_opt_iters" in line and "exp_configs/demo" in line
    ]
    return shlex.split(line)[2:]  # after "python run.py"


def test_the_readme_search_on_the_demo_runs(tmp_path, quiet_progress, capsys) -> None:
    argv = readme_search_command()
    assert argv[argv.index("--experiment_name") + 1] == "demo_search"
    root = tmp_path / "logs"
    argv += ["--root_experiment_folder", str(root), "--dataset_root", str(tmp_path / "data"), *SHRINK]
    assert main(argv) == 0, capsys.readouterr().err
    report = (root / "demo_search" / "meta" / "report.md").read_text()
    assert "| 0 | COMPLETED | Sobol (quasi-random) |" in report and "| 1 | COMPLETED |" in report
    assert "loss_funcs.metric_loss.MultiSimilarityLoss.alpha" in report
