"""The rehearsal driver's reading of an --estimate printout and its table's estimate columns."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.estimate_check import UNITS, projected_seconds
from bench.rehearsal.run import PHASE_LINE
from bench.rehearsal.summary import HEADER, markdown_table

PRINTOUT = """estimate on cpu: probe measured
  training step 3699 ms, fold set-up 0.7 s, embedding 44.66 ms/image (+2.56 s a pass)
  start-up               5 s    0.0%
  fold set-up            3 s    0.0%
  training steps      2.5 min   91.4%
  validation          37.9 h    8.4%
  test              35.6 min    0.1%
  report                 2 s    0.0%
estimate: 38.6 h in total on cpu
"""


def test_phases_and_total_of_an_estimate_printout():
    phases = {m[1]: float(m[2]) * UNITS[m[3]] for m in PHASE_LINE.finditer(PRINTOUT)}
    assert phases == {
        "start-up": 5,
        "fold set-up": 3,
        "training steps": 150,
        "validation": 37.9 * 3600,
        "test": 35.6 * 60,
        "report": 2,
    }
    assert projected_seconds(PRINTOUT) == 38.6 * 3600


def test_table_gives_the_projection_and_measured_over_projected():
    row = {"dataset": "cub", "method": "ms", "config": "cub_ms", "trunk": "published", "iterations": 10}
    rows = [
        {**row, "exit_code": 0, "wall_s": 600.0, "estimate": {"total_s": 480.0}},
        {**row, "exit_code": 0, "wall_s": 60.0},
        {**row, "exit_code": 0, "wall_s": 60.0, "estimate": {"error": "no trunk"}},
    ]
    lines = markdown_table({"runs": rows}).splitlines()
    header = [cell.strip() for cell in lines[4].strip("|").split("|")]
    assert header == HEADER
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[6:9]]
    at = HEADER.index("--estimate s")
    assert [c[at : at + 2] for c in cells] == [["480", "1.25"], ["", ""], ["failed: no trunk", ""]]


def test_phase_cells_give_wall_then_cpu_where_recorded():
    row = {
        "dataset": "cub",
        "method": "ms",
        "config": "cub_ms",
        "trunk": "light",
        "iterations": 10,
        "exit_code": 0,
    }
    phases = {"train f0": 10.0, "train f1": 12.0, "test": 30.0, "retrieval examples": 2.0}
    cpu = {"train f0": 15.0, "train f1": 17.0, "test": 55.0, "retrieval examples": 1.5}
    lines = markdown_table(
        {"runs": [{**row, "phases_s": phases, "phase_cpu_s": cpu}, {**row, "phases_s": phases}]}
    )
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines.splitlines()[6:8]]
    at = HEADER.index("train+val s wall / CPU (folds)")
    assert cells[0][at : at + 3] == ["22 / 32 (2)", "30 / 55", "2 / 2"]
    assert cells[1][at : at + 3] == ["22 (2)", "30", "2"]  # a run from before CPU times were kept
