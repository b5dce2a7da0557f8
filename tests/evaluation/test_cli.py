"""python -m dmlbench.evaluation: metrics of saved embeddings, one-line errors with exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dmlbench.evaluation.__main__ import main

# The hand-worked example of test_retrieval_metrics.py (Euclidean ranking on a line).
POINTS = np.array([[0.0], [1.0], [3.0], [4.0], [10.0], [20.0]], dtype=np.float32)
LABELS = np.array([0, 0, 1, 0, 1, 2])
EXPECTED = {
    "precision_at_1": 0.4,
    "r_precision": 0.3,
    "mean_average_precision_at_r": 0.25,
    "recall_at_2": 0.8,
}


@pytest.fixture
def saved(tmp_path: Path):
    np.save(tmp_path / "e.npy", POINTS)
    np.save(tmp_path / "l.npy", LABELS)
    return tmp_path


def test_prints_metrics_of_saved_files(saved, capsys):
    code = main(
        [
            "--embeddings",
            str(saved / "e.npy"),
            "--labels",
            str(saved / "l.npy"),
            "--no-normalize",
            "--ranking",
            "euclidean",
            "--recall-at",
            "2",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    for name, value in EXPECTED.items():
        assert printed[name] == pytest.approx(value)


def test_other_file_formats_and_query_gallery_files(saved, capsys):
    torch.save(torch.from_numpy(POINTS), saved / "e.pt")
    np.savetxt(saved / "l.txt", LABELS, fmt="%d")
    np.savez(saved / "q.npz", POINTS[:2])
    np.savetxt(saved / "ql.csv", LABELS[:2], fmt="%d")
    code = main(
        [
            "--gallery-embeddings",
            str(saved / "e.pt"),
            "--gallery-labels",
            str(saved / "l.txt"),
            "--query-embeddings",
            str(saved / "q.npz"),
            "--query-labels",
            str(saved / "ql.csv"),
            "--no-normalize",
            "--ranking",
            "euclidean",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    lines = dict(line.split(": ") for line in capsys.readouterr().out.strip().splitlines())
    # Queries 0 and 1 find themselves in the gallery first (nothing is excluded across sets).
    assert lines["precision_at_1"] == "100.00%"  # percent, as the runner prints
    # q0: 0A 1A -> RP 1, q1: 1A 0A -> 1; R = 3 (gallery items 0, 1, 3): third is 2B / 2B.
    assert lines["r_precision"] == "66.67%"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--embeddings", "missing.npy", "--labels", "l.npy"], "not found: missing.npy"),
        (["--embeddings", "e.npy", "--labels", "short.npy"], "has 6 rows but"),
        (["--embeddings", "bad.npy", "--labels", "l.npy"], "cannot read"),
        (["--embeddings", "e.npy", "--labels", "l.npy", "--k", "0"], "k must be"),
        (["--embeddings", "e.npy", "--labels", "l.npy", "--query-embeddings", "e.npy"], "together"),
        (["--embeddings", "e.npy"], "required"),
    ],
)
def test_bad_inputs_give_one_line_and_exit_code_2(saved, capsys, monkeypatch, arguments, message):
    np.save(saved / "short.npy", LABELS[:4])
    (saved / "bad.npy").write_bytes(b"not an array")
    monkeypatch.chdir(saved)
    assert main(arguments + ["--device", "cpu"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and message in error


def test_module_runs_as_a_program(saved):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dmlbench.evaluation",
            "--embeddings",
            str(saved / "e.npy"),
            "--labels",
            str(saved / "nope.npy"),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: labels file not found: {saved / 'nope.npy'}"
