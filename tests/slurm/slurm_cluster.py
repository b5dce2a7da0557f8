"""The Slurm cluster the tests in tests/slurm/ run on (skipped unless ``sinfo`` shows an idle
node; tests/slurm/README.md), and what they ask it: job states, job processes, a search command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from demo_commands import TINY_TRIAL

REPO = Path(__file__).resolve().parents[2]
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}
WAIT_S = float(os.environ.get("DMLBENCH_SLURM_WAIT_S", "300"))


def _idle_node() -> str | None:
    """Why no Slurm cluster is usable here (None: one is)."""
    if shutil.which("sinfo") is None:
        return "no Slurm client (sinfo) on PATH"
    try:
        answer = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 15 s"
    states = {state.strip("*~#!%$@^-") for state in answer.stdout.split()}
    if answer.returncode != 0 or not states & {"idle", "mixed"}:
        return f"no idle Slurm node (sinfo: {answer.stdout.strip() or answer.stderr.strip()})"
    return None


REASON = _idle_node()
#: DMLBENCH_REQUIRE_SLURM=1 (CI, after start_cluster.sh): no cluster is a failure, not a skip.
REQUIRED = os.environ.get("DMLBENCH_REQUIRE_SLURM") == "1"
#: Every test module here: marked ``slurm`` and skipped without a usable cluster.
SLURM_MARKS = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        REASON is not None and not REQUIRED, reason=f"{REASON}; start one with tests/slurm/start_cluster.sh"
    ),
]
#: DMLBENCH_SLURM_PARTITION: the partition every job of these tests goes to (default: the cluster's).
PARTITION = os.environ.get("DMLBENCH_SLURM_PARTITION")


def slurm_config_dir(workdir: Path, options: str) -> Path:
    """A config folder whose ``config_general/slurm_test.yaml`` holds ``slurm:`` with ``options``
    (YAML lines, indented) and the test partition if one is set."""
    config_dir = workdir / "configs"
    (config_dir / "config_general").mkdir(parents=True)
    (config_dir / "config_general" / "slurm_test.yaml").write_text(
        "slurm:\n" + options + (f"  partition: {PARTITION}\n" if PARTITION else "")
    )
    return config_dir


def slurm_info(job_id: str) -> tuple[str, str] | None:
    """(state, partition) of a job as Slurm reports it, None once Slurm has forgotten it."""
    for command in (
        ["squeue", "-h", "-t", "all", "-o", "%T|%P", "-j", job_id],
        ["sacct", "-n", "-X", "-P", "-o", "State,Partition", "-j", job_id],
    ):
        answer = subprocess.run(command, capture_output=True, text=True, timeout=30)
        line = answer.stdout.strip()
        if answer.returncode == 0 and line:
            state, partition = line.splitlines()[0].split("|")
            return state.split()[0], partition
    return None


def job_id(folder: Path, kind: str = "trial") -> str | None:
    record = folder / "meta" / f"{kind}_submitit_job.txt"
    if not record.exists():
        return None
    cluster, identifier = record.read_text().split()
    assert cluster == "slurm"
    return identifier


def job_processes(folder: Path) -> list[int]:
    """Pids of the submitit worker processes that run the job whose files are in ``folder/slurm``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"submitit.core._submit" in command and str(folder / "slurm").encode() in command:
                pids.append(int(entry.name))
    return pids


def wait_until(
    condition: Callable[[], object], what: str, driver: subprocess.Popen | None, log: Path
) -> object:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if driver is not None and driver.poll() is not None:
            raise AssertionError(
                f"the search exited ({driver.returncode}) before {what}:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {WAIT_S:.0f} s:\n{log.read_text()[-3000:]}")


def search_command(root: Path, data: Path, config_dir: Path) -> list[str]:
    """The demo search shrunk to seconds, every job through Slurm, 2 jobs at once."""
    return [
        sys.executable,
        str(REPO / "run.py"),
        "--reproduce_results",
        str(REPO / "exp_configs" / "demo"),
        "--merge_argparse_when_resuming",
        "--experiment_name",
        "slurm_search",
        "--root_experiment_folder",
        str(root),
        "--dataset_root",
        str(data),
        "--root_config_folder",
        str(config_dir),
        "--config_general",
        "[default, slurm_test]",
        *TINY_TRIAL,
        "--loss_funcs~APPLY~3",
        "{alpha~LOG_BAYESIAN~: [0.5, 10]}",
        "--bayes_opt_iters",
        "4",
        "--sobol_trials",
        "2",
        "--reproductions",
        "0",
        "--trial_executor",
        "slurm",
        "--max_parallel_trials",
        "2",
    ]
