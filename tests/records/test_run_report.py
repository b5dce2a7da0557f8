"""The run's report writer from plain data: finish_experiment with a fake record store,
report_results merging an earlier report.json, and the split the retrieval examples use."""

from __future__ import annotations

import hashlib
import json

import pytest

from dmlbench.records.run_report import (
    ReportInputs,
    finish_experiment,
    report_results,
    retrieval_split,
)


def metrics(p1: float, rp: float, mapr: float) -> dict[str, float]:
    return {"precision_at_1": p1, "r_precision": rp, "mean_average_precision_at_r": mapr}


SUMMARY = {
    "test": {
        "trained": {
            "separated": {
                "mean": metrics(0.6, 0.4, 0.3),
                "sem": metrics(0.1, 0.1, 0.05),
                "per_fold": {"f0": metrics(0.5, 0.3, 0.25), "f1": metrics(0.7, 0.5, 0.35)},
            },
            "concatenated": metrics(0.8, 0.6, 0.5),
        }
    }
}
CONFIG = {
    "config_general": {"eval_metric_for_best_epoch": "mean_average_precision_at_r"},
    "config_dataset": {
        "dataset": {"DemoShapes": {}},
        "split_manager": {"MLRCSplitManager": {"test_size": 0.5}},
    },
}


class FakeStore:
    def __init__(self) -> None:
        self.exports = 0

    def export_csv(self) -> list:
        self.exports += 1
        return []

    def training_values(self) -> list[dict]:
        return [
            {"scheme": "f0", "step": step, "name": "metric_loss", "value": 1.0 / step} for step in (10, 20)
        ]


def test_finish_experiment_writes_the_report_of_plain_data(tmp_path, capsys):
    folder = tmp_path / "demo"
    (folder / "meta").mkdir(parents=True)
    training = {
        "f0": {
            "best_epoch": 2,
            "best_score": 0.25,
            "epochs": 4,
            "stop_reason": "reached num_epochs_train = 4",
            "history": [
                {"epoch": 0, "mean_average_precision_at_r": 0.1},
                {"epoch": 2, "mean_average_precision_at_r": 0.25},
            ],
        }
    }
    retrieval = {"skipped": "drawn elsewhere"}
    store = FakeStore()
    inputs = ReportInputs(folder, CONFIG, "2026-01-01T00:00:00+00:00", SUMMARY, {"t": 1}, training, retrieval)
    report = finish_experiment(inputs, store)

    saved = json.loads((folder / "meta" / "report.json").read_text())
    assert saved == report
    assert store.exports == 1
    assert report["experiment"] == "demo" and report["created"] == "2026-01-01T00:00:00+00:00"
    assert (report["dataset"], report["split_manager"]) == ("DemoShapes", "MLRCSplitManager")
    assert report["config_sha256"] == hashlib.sha256(json.dumps(CONFIG, sort_keys=True).encode()).hexdigest()
    assert report["split_manifest_sha256"] is None  # no configs/split_manifest.json here
    assert report["results"] == SUMMARY and report["tested_at"] == {"t": 1}
    assert report["training"] == {"f0": {k: v for k, v in training["f0"].items() if k != "history"}}
    assert report["plots"] == ["validation_curves.png", "training_losses.png"]
    assert all((folder / "meta" / "plots" / name).stat().st_size > 0 for name in report["plots"])
    assert report["retrieval"] == retrieval
    assert list(report)[-3:] == ["versions", "phase_times", "phase_cpu_times"]
    # the tables: percent, separated = mean ± SEM (hand-written from SUMMARY)
    markdown = (folder / "meta" / "report.md").read_text()
    assert (
        "| test | trained | separated (2 models) | 60.00 ± 10.00 | 40.00 ± 10.00 | 30.00 ± 5.00 |" in markdown
    )
    assert "| test | trained | concatenated (2 models) | 80.00 | 60.00 | 50.00 |" in markdown
    assert "| f0 | 2 | 25.00 | 4 | reached num_epochs_train = 4 |" in markdown
    page = (folder / "meta" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "drawn elsewhere" in page
    printed = capsys.readouterr().out
    assert "concatenated (2 models)  80.00" in printed and "report.html" in printed


def test_finish_experiment_without_retrieval_or_training_values(tmp_path, capsys):
    class Empty(FakeStore):
        def training_values(self) -> list[dict]:
            return []

    inputs = ReportInputs(tmp_path / "x", CONFIG, "now", SUMMARY, {}, {}, None)
    (tmp_path / "x" / "meta").mkdir(parents=True)
    report = finish_experiment(inputs, Empty())
    assert "retrieval" not in report and report["plots"] == [] and report["training"] == {}


def test_report_results_merge_keeps_what_this_test_did_not_recompute(tmp_path):
    earlier = {
        "results": {
            "val": {"trained": {"separated": "val-old"}},
            "test": {"trained": {"separated": "sep-old", "concatenated": "cat-old"}},
        },
        "tested_at": {
            "val": {"trained": {"separated": "t0"}},
            "test": {"trained": {"separated": "t0", "concatenated": "t0"}},
        },
    }
    (tmp_path / "report.json").write_text(json.dumps(earlier))
    new = {"test": {"trained": {"separated": "sep-new"}}}
    results, times = report_results(tmp_path, new, "t1", merge=True)
    assert results == {
        "val": {"trained": {"separated": "val-old"}},
        "test": {"trained": {"separated": "sep-new", "concatenated": "cat-old"}},
    }
    assert times["test"]["trained"] == {"separated": "t1", "concatenated": "t0"}
    assert times["val"]["trained"] == {"separated": "t0"}
    # without merge the earlier report is ignored
    assert report_results(tmp_path, new, "t1") == (new, {"test": {"trained": {"separated": "t1"}}})


@pytest.mark.parametrize(
    ("results", "split"),
    [
        ({"val": {"untrained_trunk": {}}, "test": {"trained": {}}}, "test"),
        ({"val": {"trained": {}}, "test": {"trained": {}}}, "val"),
        ({"test": {"untrained_trunk": {}}}, None),
    ],
)
def test_retrieval_split_is_the_first_with_trained_models(results, split):
    assert retrieval_split(results) == split
