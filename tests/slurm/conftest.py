"""Fixtures of the Slurm tests: the cluster-required check and a working folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from slurm_cluster import REASON


@pytest.fixture(autouse=True)
def _cluster_required():
    """Not skipped although no cluster answers (DMLBENCH_REQUIRE_SLURM=1): fail with the reason."""
    if REASON is not None:
        pytest.fail(f"DMLBENCH_REQUIRE_SLURM=1 but {REASON}")


@pytest.fixture
def workdir(tmp_path):
    """A folder the compute node sees (DMLBENCH_SLURM_WORKDIR on a multi-node cluster); every
    Slurm job the test leaves behind is cancelled by its id."""
    base = (
        Path(os.environ["DMLBENCH_SLURM_WORKDIR"]) / tmp_path.name
        if "DMLBENCH_SLURM_WORKDIR" in os.environ
        else tmp_path
    )
    base.mkdir(parents=True, exist_ok=True)
    yield base
    ids = {
        path.read_text().split()[1]
        for path in base.glob("logs/slurm_search/trials/trial_*/meta/*_submitit_job.txt")
    }
    ids |= {
        path.name.split("_")[0]
        for path in base.glob("logs/slurm_search/trials/trial_*/slurm/*_submitted.pkl")
    }
    if ids:
        subprocess.run(["scancel", *sorted(ids)], capture_output=True, timeout=30)
