"""Report summaries and tables from hand-made fold results."""

import json

import pytest

from dmlbench.evaluation.protocol import summarize_test_results
from dmlbench.records.result_tables import results_table
from dmlbench.records.run_report import write_report


def fold(p1, rp, mapr):
    return {"precision_at_1": p1, "r_precision": rp, "mean_average_precision_at_r": mapr}


RESULTS = {
    "test": {
        "trained": {
            "folds": {"f0": fold(0.5, 0.3, 0.2), "f1": fold(0.7, 0.5, 0.4)},
            "concatenated": fold(0.8, 0.6, 0.5),
        }
    }
}


def test_summary_mean_and_sem():
    summary = summarize_test_results(RESULTS)
    separated = summary["test"]["trained"]["separated"]
    assert separated["mean"]["precision_at_1"] == pytest.approx(0.6)
    assert separated["sem"]["precision_at_1"] == pytest.approx(0.1)  # |0.5 - 0.7| / 2
    assert summary["test"]["trained"]["concatenated"]["r_precision"] == 0.6


def test_table_rows_in_percent():
    rows = results_table(summarize_test_results(RESULTS))
    assert rows[0][-3:] == ["P@1", "R-Precision", "MAP@R"]
    assert rows[1][2] == "separated (2 models)" and rows[1][3] == "60.00 ± 10.00"
    assert rows[2][2] == "concatenated (2 models)" and rows[2][5] == "50.00"


def test_write_report_files(tmp_path):
    report = {"experiment": "x", "results": summarize_test_results(RESULTS)}
    write_report(tmp_path, report)
    assert json.loads((tmp_path / "report.json").read_text())["experiment"] == "x"
    assert (
        "| test | trained | concatenated (2 models) | 80.00 | 60.00 | 50.00 |"
        in (tmp_path / "report.md").read_text()
    )
