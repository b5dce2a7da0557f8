"""Leftovers of interrupted atomic writes in a search: the driver removes its own (configs/, meta/,
the files of trials/) and leaves job folders to their jobs; a job removes those of its folder
under its lock, when their writer is gone and they are older than a write takes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from dmlbench.search.driver import remove_search_temp_files
from dmlbench.search.jobs import STALE_TEMP_AGE_S, run_job
from dmlbench.search.layout import SearchLayout

DEAD_PID = 4194399  # above Linux's largest pid (2^22): never a live process


def temp_file(folder: Path, name: str, pid: int = DEAD_PID, age_s: float = 3600.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{name}.{pid}.deadbeef.tmp"
    path.write_text("half written")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_the_driver_removes_its_own_leftovers_not_the_jobs(tmp_path):
    layout = SearchLayout(tmp_path / "search")
    own = [
        temp_file(layout.trials_dir, "ax_state.json"),
        temp_file(layout.meta_dir / "csv", "trials.csv"),
        temp_file(layout.config_dir, "config_general.yaml"),
    ]
    jobs = [
        temp_file(layout.trials_dir / "trial_0000" / "meta", "trial_result.json"),
        temp_file(layout.experiment_dir / "reproductions" / "reproduction_0000" / "meta", "test_result.json"),
    ]
    alive = temp_file(layout.meta_dir, "report.json", pid=os.getpid())

    assert sorted(remove_search_temp_files(layout)) == sorted(own)
    assert not any(path.exists() for path in own)
    assert all(path.exists() for path in jobs + [alive])


def test_a_job_removes_the_old_leftovers_of_its_folder(tmp_path):
    folder = tmp_path / "trial_0000"
    (folder / "meta").mkdir(parents=True)
    result = {"metric": "mean_average_precision_at_r", "mean": 0.25, "sem": None, "per_fold": {}}
    (folder / "meta" / "trial_result.json").write_text(json.dumps(result))
    old = temp_file(folder / "Test50_50_Partitions4_0" / "checkpoints", "latest.pt")
    young = temp_file(
        folder / "meta", "trial_submitit_job.txt", age_s=STALE_TEMP_AGE_S / 4
    )  # the driver's, maybe
    alive = temp_file(folder / "meta", "records.db", pid=os.getpid())

    assert run_job("trial", folder, tmp_path)["mean"] == 0.25
    assert not old.exists()
    assert young.exists() and alive.exists()
