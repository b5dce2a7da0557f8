"""What reports show a reader: one model or one fold without a spread, report.md with the figures
report.html embeds, readable axis and generator names, the git commit of a clone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dmlbench.evaluation.protocol import summarize_test_results
from dmlbench.records.environment import git_commit
from dmlbench.records.plots import metric_label
from dmlbench.records.result_tables import format_mean_sem, results_table
from dmlbench.records.run_report import render_markdown
from dmlbench.search.search_html import trials_table


def fold(p1: float, rp: float, mapr: float) -> dict[str, float]:
    return {"precision_at_1": p1, "r_precision": rp, "mean_average_precision_at_r": mapr}


def test_one_model_has_no_sem() -> None:
    one = {"test": {"trained": {"folds": {"f0": fold(0.5, 0.3, 0.2)}, "concatenated": fold(0.5, 0.3, 0.2)}}}
    rows = results_table(summarize_test_results(one))
    assert rows[1][2:] == ["separated (1 model)", "50.00", "30.00", "20.00"]
    assert rows[2][2] == "concatenated (1 model)"
    assert not any("±" in cell for row in rows for cell in row)


def test_mean_sem_cell() -> None:
    assert format_mean_sem(0.5, 0.01, 2) == "50.00 ± 1.00"
    assert format_mean_sem(0.5, 0.0, 1) == "50.00"
    assert format_mean_sem(0.5, None) == "50.00"
    assert format_mean_sem(None, None) == "-"


def test_trials_table_names_generators_and_shows_no_sem_for_one_fold() -> None:
    trials = [
        {
            "index": 0,
            "status": "COMPLETED",
            "generation_node": "Sobol",
            "mean": 0.1,
            "sem": 0.02,
            "parameters": {},
        },
        {
            "index": 1,
            "status": "COMPLETED",
            "generation_node": "MBM",
            "mean": 0.2,
            "sem": None,
            "parameters": {},
        },
    ]
    page = trials_table(trials)
    assert "Bayesian optimisation" in page and "MBM" not in page
    assert "10.00 ± 2.00" in page and "<td class='n'>20.00</td>" in page


def test_markdown_report_links_the_figures_and_versions() -> None:
    report = {
        "experiment": "x",
        "results": summarize_test_results({"test": {"trained": {"folds": {"f0": fold(0.5, 0.3, 0.2)}}}}),
        "plots": ["validation_curves.png"],
        "retrieval": {
            "split": "test",
            "top_k": 8,
            "note": "best fold 0",
            "grids": [{"name": "best fold", "plot": "retrieval_best_fold.png", "query_map_at_r": [0.25]}],
            "worst_classes": [{"label": 7, "map_at_r": 0.125}],
            "plots": ["per_class_map_at_r.png", "precision_recall.png"],
        },
        "versions": {"torch": "2.14.1", "dmlbench git commit": "abc"},
    }
    text = render_markdown(report)
    for name in ["validation_curves", "retrieval_best_fold", "per_class_map_at_r", "precision_recall"]:
        assert f"(plots/{name}.png)" in text
    assert "query MAP@R (%): 25.00" in text and "| 7 | 12.50 |" in text
    assert "| dmlbench git commit | abc |" in text


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("mean_average_precision_at_r", "MAP@R"),
        ("precision_at_1", "P@1"),
        ("r_precision", "R-Precision"),
        ("recall_at_4", "Recall@4"),
        ("some_other_metric", "some other metric"),
    ],
)
def test_axis_labels_are_readable(key: str, label: str) -> None:
    assert metric_label(key) == label


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_of_a_clone(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None  # not a work tree: an installed copy
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "a.txt").write_text("1\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "one")
    head = (tmp_path / ".git" / "refs" / "heads" / "main").read_text().strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("2\n")
    assert git_commit(tmp_path) == head + ", uncommitted changes"


def test_compare_cell_of_one_fold_model_has_no_sem() -> None:
    from dmlbench.compare import format_cell
    from dmlbench.records.comparison import _cells_from_summary

    one = summarize_test_results({"test": {"trained": {"folds": {"f0": fold(0.5, 0.3, 0.2)}}}})
    assert format_cell(_cells_from_summary(one["test"]["trained"])["separated", "precision_at_1"]) == "50.00"
    two = summarize_test_results(
        {"test": {"trained": {"folds": {"f0": fold(0.5, 0.3, 0.2), "f1": fold(0.7, 0.3, 0.2)}}}}
    )
    assert (
        format_cell(_cells_from_summary(two["test"]["trained"])["separated", "precision_at_1"])
        == "60.00 ± 10.00"
    )
