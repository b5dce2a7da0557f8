"""report.html in a real browser (headless Chromium), ``python -m dmlbench.report`` on a folder
trained earlier, and ``python -m dmlbench.compare`` on shrunken demo runs, one of them on another
split and one still training."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmlbench import compare
from dmlbench import report as report_command
from dmlbench.cli import main
from dmlbench.records import retrieval_examples as rx

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "--reproduce_results",
    str(REPO / "exp_configs" / "demo"),
    "--merge_argparse_when_resuming",
    "--dataset",
    "{DemoShapes: {num_classes: 16, images_per_class: 10}}",
    "--num_epochs_train",
    "2",
    "--iterations_per_epoch",
    "10",
    "--save_interval",
    "1",
    "--batch_size",
    "16",
]
SPLIT_A = ["--split_manager", "{MLRCSplitManager: {num_training_sets: 2}}"]
SPLIT_B = ["--split_manager", "{MLRCSplitManager: {num_training_sets: 2, num_training_partitions: 2}}"]


def browser() -> str | None:
    return next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root, data = tmp_path_factory.mktemp("logs"), tmp_path_factory.mktemp("data")
    printed = io.StringIO()
    for name, split in (("demo_a", SPLIT_A), ("demo_b", SPLIT_B)):
        with contextlib.redirect_stdout(printed):
            assert (
                main(
                    [
                        *TINY,
                        *split,
                        "--experiment_name",
                        name,
                        "--root_experiment_folder",
                        str(root),
                        "--dataset_root",
                        str(data),
                    ]
                )
                == 0
            )
    return {
        "root": root,
        "data": data,
        "a": root / "demo_a",
        "b": root / "demo_b",
        "printed": printed.getvalue(),
    }


def render_in_chromium(page: Path, shot: Path) -> str:
    """Screenshot and DOM after load of ``page`` in headless Chromium (skip without a browser)."""
    executable = browser()
    if executable is None:
        pytest.skip(
            "no Chromium found (install it: apt-get install -y chromium); the HTML report test needs a browser"
        )
    common = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,1800", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return subprocess.run(
        [*common, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True, timeout=120
    ).stdout


def check_images_resolve(page: Path, dom: str, at_least: int) -> None:
    sources = re.findall(r"<img [^>]*src=\"([^\"]+)\"", dom)
    assert len(sources) >= at_least, sources
    for source in sources:
        if source.startswith("data:image/png;base64,"):
            Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).verify()
        else:
            assert (page.parent / source).is_file(), source
    assert 'data-broken-images="0"' in dom  # the browser loaded every image


@pytest.mark.browser
def test_run_prints_and_writes_report_html_that_renders_in_chromium(runs, tmp_path):
    page = runs["a"] / "meta" / "report.html"
    assert f"report: {page}" in runs["printed"]
    dom = render_in_chromium(page, tmp_path / "shot.png")
    assert dom.count("<table") >= 4  # results, training, worst classes, versions...
    report = json.loads((runs["a"] / "meta" / "report.json").read_text())
    trained = report["results"]["test"]["trained"]
    assert f"{100 * trained['concatenated']['mean_average_precision_at_r']:.2f}" in dom
    assert f"{100 * trained['separated']['sem']['precision_at_1']:.2f}" in dom
    for text in (
        "validation curves per fold",
        "training loss curves",
        "best fold",
        "concatenated (2 folds)",
        "pytorch-metric-learning",
        "Time per phase",
        "CPU time (s)",
        "<details>",
        "run.py",
    ):
        assert text in dom, text
    check_images_resolve(page, dom, at_least=6)
    shot = np.asarray(Image.open(tmp_path / "shot.png").convert("RGB"))
    assert shot.shape[:2] == (1800, 1200)
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 1000  # not a blank page


def test_report_html_shows_why_the_first_examples_find_their_neighbours(runs, tmp_path):
    page = runs["a"] / "meta" / "report.html"
    dom = render_in_chromium(page, tmp_path / "shot.png")
    retrieval = json.loads((runs["a"] / "meta" / "report.json").read_text())["retrieval"]
    items = retrieval["explanations"]["items"]  # eval_explanations: 2 by default
    assert [item["query"]["index"] for item in items] == retrieval["grids"][0]["queries"][:2]
    assert "Why these neighbours (explanations)" in dom
    shown = dict(
        re.findall(r'<img alt="explanation of query (\d+)" src="data:image/png;base64,([^"]+)"', dom)
    )
    assert sorted(shown) == sorted(str(item["query"]["index"]) for item in items)
    for data in shown.values():  # the figure: a row of two panels per neighbour
        width, height = Image.open(io.BytesIO(base64.b64decode(data))).size
        assert height > width > 200
    for neighbour in items[0]["neighbours"]:
        assert f"{neighbour['similarity']:.4f}" in dom
    assert 'data-broken-images="0"' in dom


def test_report_command_redraws_examples_of_a_trained_folder(runs, capsys):
    assert (
        report_command.main(
            [str(runs["a"]), "--queries", "3", "--top_k", "4", "--dataset_root", str(runs["data"])]
        )
        == 0
    )
    assert "report.html" in capsys.readouterr().out
    report = json.loads((runs["a"] / "meta" / "report.json").read_text())
    grids = report["retrieval"]["grids"]
    assert [len(g["queries"]) for g in grids] == [3, 3]
    assert grids[0]["query_map_at_r"][0] == min(grids[0]["query_map_at_r"][:2])  # worst first
    image = Image.open(runs["a"] / "meta" / "plots" / grids[0]["plot"])
    assert image.size == (rx.cell_origin(0, 5)[0], rx.cell_origin(3, 0)[1])  # 3 rows of query + 4
    assert report_command.main([str(runs["root"] / "nothing_here"), "--dataset_root", str(runs["data"])]) == 2


def test_run_examples_from_the_test_embeddings_equal_a_fresh_embedding(runs, tmp_path):
    """The run draws its examples from the embeddings of its test phase; the report command embeds
    the split again from best.pt: the same neighbours, scores and worst classes."""
    folder = shutil.copytree(runs["b"], tmp_path / "demo_b")
    during_run = json.loads((folder / "meta" / "report.json").read_text())["retrieval"]
    queries = len(during_run["grids"][0]["queries"])
    assert (
        report_command.main(
            [
                str(folder),
                "--queries",
                str(queries),
                "--top_k",
                str(during_run["top_k"]),
                "--dataset_root",
                str(runs["data"]),
            ]
        )
        == 0
    )
    fresh = json.loads((folder / "meta" / "report.json").read_text())["retrieval"]
    assert fresh["grids"] == during_run["grids"]
    assert fresh["worst_classes"] == during_run["worst_classes"]


def table_rows(text: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text)) if row and not row[0].startswith("#")]


def test_compare_flags_another_split_and_a_run_still_training(runs, tmp_path, capsys):
    training = tmp_path / "demo_training"
    shutil.copytree(runs["a"], training)
    (training / "meta" / "report.json").unlink()  # as during training: configs and checkpoints, no report
    resumed = tmp_path / "demo_resumed"
    shutil.copytree(runs["a"], resumed)
    later = (resumed / "meta" / "report.json").stat().st_mtime + 60
    for latest in resumed.glob("*/checkpoints/latest.pt"):
        os.utime(latest, (later, later))
    assert compare.main([str(runs["a"]), str(runs["b"]), str(training), str(resumed), "--format", "csv"]) == 0
    text = capsys.readouterr().out
    rows = table_rows(text)
    assert len(rows) == 2 and rows[1][1] == "demo_a"  # header + demo_a only
    trained = json.loads((runs["a"] / "meta" / "report.json").read_text())["results"]["test"]["trained"]
    header = rows[0]
    concatenated = trained["concatenated"]["mean_average_precision_at_r"]
    assert rows[1][header.index("DemoShapes concatenated MAP@R")] == f"{100 * concatenated:.2f}"
    separated = trained["separated"]
    assert rows[1][header.index("DemoShapes separated P@1")] == (
        f"{100 * separated['mean']['precision_at_1']:.2f} ± {100 * separated['sem']['precision_at_1']:.2f}"
    )
    flagged = [line for line in text.splitlines() if "NOT IN THE TABLE" in line]
    assert any("demo_b" in line and "another split" in line for line in flagged)
    assert any("demo_training" in line and "unfinished" in line for line in flagged)
    assert any("demo_resumed" in line and "unfinished" in line for line in flagged)


def published_from_docs() -> dict[str, list[str]]:
    """The MS+Miner row of docs/protocol.md's table, read independently of the package's data file."""
    for line in (REPO / "docs" / "protocol.md").read_text().splitlines():
        if line.startswith("| MS+Miner |"):
            cub, cars = [c.strip() for c in line.strip("|").split(" | ")[1:3]]
            return {"CUB200": re.split(r"[/|\\ ]+", cub), "Cars196": re.split(r"[/|\\ ]+", cars)}
    raise AssertionError("MS+Miner row not found")


def test_compare_published_numbers_and_formats(runs, tmp_path, capsys):
    cub = tmp_path / "cub_copy"
    shutil.copytree(runs["a"], cub)
    report = json.loads((cub / "meta" / "report.json").read_text())
    report["dataset"] = "CUB200"
    (cub / "meta" / "report.json").write_text(json.dumps(report))
    assert compare.main([str(cub), "--published", "--format", "csv"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows[2][0] == "MultiSimilarityLoss + MultiSimilarityMiner, published"
    expected = [f"{float(v):.2f}" for v in published_from_docs()["CUB200"]]
    assert rows[2][2:] == expected  # concatenated P@1, RP, MAP@R then separated
    assert compare.main([str(cub), "--published", "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert latex.startswith("\\begin{tabular}") and "$\\pm$" in latex and "ECCV 2020" in latex
    assert compare.main([str(cub), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| method | experiments | CUB200 concatenated P@1")


@pytest.mark.browser
def test_search_report_html_has_trials_and_trace(tmp_path):
    from dmlbench.search.results import TrialRow, aggregate_runs
    from dmlbench.search.search_report import write_search_outputs

    def run(value: float) -> dict:
        metrics = {"mean_average_precision_at_r": value}
        return {
            "test": {
                "trained": {
                    "separated": {"mean": metrics, "sem": metrics, "per_fold": {}},
                    "concatenated": metrics,
                }
            }
        }

    rows = [
        TrialRow(
            i, "COMPLETED", "SOBOL", {"alpha": 0.5 * (i + 1)}, f"trials/trial_{i:04d}", 0.2 + 0.1 * i, 0.01
        )
        for i in range(3)
    ]
    rows.append(TrialRow(3, "FAILED", "SOBOL", {"alpha": 9.0}, "trials/trial_0003", error="diverged"))
    report = {
        "experiment": "search_x",
        "created": "now",
        "objective": "mean_average_precision_at_r",
        "iterations": 4,
        "sobol_trials": 4,
        "trial_counts": {"COMPLETED": 3, "FAILED": 1},
        "best_trial": {
            "index": 2,
            "folder": "trials/trial_0002",
            "generation_node": "SOBOL",
            "mean": 0.4,
            "sem": 0.01,
            "per_fold": {},
            "parameters": {"alpha": 1.5},
        },
        "best_trial_test": {},
        "plots": [],
        "reproductions": {
            "count": 3,
            "level": 0.95,
            "results": aggregate_runs([run(0.30), run(0.34), run(0.32)]),
        },
        "trials": [
            {
                "index": r.index,
                "status": r.status,
                "generation_node": r.generation_node,
                "mean": r.mean,
                "sem": r.sem,
                "folder": r.folder,
                "parameters": r.parameters,
            }
            for r in rows
        ],
    }
    meta = tmp_path / "search_x" / "meta"
    write_search_outputs(meta, report, rows, ["alpha"], "mean_average_precision_at_r")
    page = meta / "report.html"
    dom = render_in_chromium(page, tmp_path / "shot.png")
    assert "Search trace" in dom and "FAILED" in dom and "40.00 ± 1.00" in dom
    # mean 0.32, s = 0.02, t(0.975, 2) = 4.3027: interval 32 ± 4.3027 * 2 / sqrt(3) = [27.03, 36.97]
    assert "32.00 [27.03, 36.97]" in dom and "95% Student-t interval" in dom
    assert "<th>alpha</th>" in dom
    check_images_resolve(page, dom, at_least=1)
