"""bench/rehearsal/cache_build.py on a tiny CUB tree: one cache file per image, the table
written, and a warm pass that finds every copy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))

from dataset_trees import build_cub_tree

from bench.rehearsal import cache_build


def test_cold_and_warm_passes_over_every_image(tmp_path):
    root, images = build_cub_tree(tmp_path / "data")
    out = tmp_path / "cache.json"
    argv = ["--data", str(root), "--dataset", "cub", "--short_sides", "8", "--threads", "2"]
    assert cache_build.main([*argv, "--json", str(out), "--md", str(tmp_path / "cache.md")]) == 0
    (row,) = json.loads(out.read_text())["runs"]
    assert row["images"] == len(images) and row["cold"]["files"] == len(images)
    assert row["cold"]["bytes"] > 0 and row["warm"]["wall_s"] > 0
    assert f"| cub | {len(images)} | 8 | 2 |" in (tmp_path / "cache.md").read_text()


def test_a_missing_tree_is_one_line_naming_the_file(tmp_path, capsys):
    assert cache_build.main(["--data", str(tmp_path), "--dataset", "sop"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: StanfordOnlineProducts:") and "Ebay_train.txt not found" in err
    assert len(err.strip().splitlines()) == 1
