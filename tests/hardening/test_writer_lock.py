"""One writer per experiment folder (dmlbench/writer_lock.py): a second writer is refused in one
line naming the holder, a dead holder never blocks, a link is never written through, and of two
concurrent starts of one experiment exactly one runs while the other changes nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dmlbench.config.yaml_io import load_yaml_file
from dmlbench.errors import ExperimentError
from dmlbench.writer_lock import LOCK_NAME, acquire, release_all

REPO = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time; from dmlbench.writer_lock import acquire; acquire(sys.argv[1]); "
    "print('held', flush=True); time.sleep(60)"
)


def hold_in_child(folder: Path) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "held"
    return child


def test_second_writer_is_refused_naming_the_holder_and_a_dead_one_never_blocks(tmp_path) -> None:
    folder = tmp_path / "logs" / "x"
    child = hold_in_child(folder)
    try:
        with pytest.raises(ExperimentError) as refused:
            acquire(folder)
        message = str(refused.value)
        assert f"process {child.pid} on {socket.gethostname()}" in message
        assert str(folder) in message and "\n" not in message
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    acquire(folder)  # the kernel dropped the killed holder's lock
    assert (folder / LOCK_NAME).read_text().split() == [str(os.getpid()), socket.gethostname()]
    release_all()


def test_release_removes_the_lock_file_and_the_empty_folders_it_made(tmp_path) -> None:
    (tmp_path / "mine").mkdir()
    acquire(tmp_path / "mine").release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"] and not any((tmp_path / "mine").iterdir())
    acquire(tmp_path / "root" / "x").release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_a_linked_lock_file_is_refused_and_its_target_untouched(tmp_path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / LOCK_NAME).symlink_to(target)
    with pytest.raises(ExperimentError, match="is a symbolic link"):
        acquire(folder)
    assert target.read_text() == "keep me\n"


TINY = [
    "--reproduce_results",
    str(REPO / "exp_configs" / "demo"),
    "--merge_argparse_when_resuming",
    "--dataset",
    "{DemoShapes: {num_classes: 16, images_per_class: 8}}",
    "--split_manager",
    "{MLRCSplitManager: {num_training_partitions: 2, num_training_sets: 2}}",
    "--num_epochs_train",
    "1",
    "--iterations_per_epoch",
    "2",
    "--batch_size",
    "16",
    "--check_untrained_accuracy",
    "false",
]


@pytest.mark.multiprocess
def test_two_concurrent_starts_exactly_one_runs_the_other_changes_nothing(tmp_path) -> None:
    """Two processes start one experiment name at the same moment (the second with another seed):
    one trains to its report, the other is refused in one line and leaves the first's folder as
    the first alone would have made it (its seed, its one command line)."""
    where = ["--root_experiment_folder", str(tmp_path / "logs"), "--dataset_root", str(tmp_path / "data")]
    commands = {
        seed: [sys.executable, "run.py", "--experiment_name", "twin", *where, *TINY, "--seed", str(seed)]
        for seed in (3, 5)
    }
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    # the demo data set is generated once, before the race (its generation is not the subject here)
    subprocess.run(
        [*commands[3][:3], "solo", *commands[3][4:]],
        cwd=REPO,
        env=environment,
        check=True,
        capture_output=True,
    )
    processes = {
        seed: subprocess.Popen(command, cwd=REPO, env=environment, stderr=subprocess.PIPE, text=True)
        for seed, command in commands.items()
    }
    deadline = time.time() + 600
    outcomes = {
        seed: (p.wait(timeout=max(1, deadline - time.time())), p.stderr.read())
        for seed, p in processes.items()
    }

    codes = sorted(code for code, _ in outcomes.values())
    assert codes == [0, 2], outcomes
    winner = next(seed for seed, (code, _) in outcomes.items() if code == 0)
    loser_error = next(err for code, err in outcomes.values() if code == 2).strip().splitlines()
    assert len(loser_error) == 1 and loser_error[0].startswith("error: "), loser_error
    assert "another dmlbench command" in loser_error[0] or "already holds an experiment" in loser_error[0]
    folder = tmp_path / "logs" / "twin"
    assert load_yaml_file(folder / "configs" / "config_general.yaml")["seed"] == winner
    command_lines = (folder / "configs" / "command_line.txt").read_text().splitlines()
    assert len(command_lines) == 1 and f"--seed {winner}" in command_lines[0]
    assert (folder / "meta" / "report.json").exists()
    assert not (folder / LOCK_NAME).exists()


def test_torchrun_ranks_above_zero_leave_the_lock_to_rank_zero(tmp_path, monkeypatch) -> None:
    """Every torchrun process runs the command; rank 0 holds the folder's lock for the job, so a
    rank > 0 must not be refused by it (it writes nothing there)."""
    from dmlbench.run_guard import lock_experiment_folder

    folder = tmp_path / "logs" / "ddp"
    child = hold_in_child(folder)  # stands in for rank 0
    try:
        monkeypatch.setenv("RANK", "1")
        lock_experiment_folder(folder, continuing=False)  # no refusal
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(ExperimentError, match="another dmlbench command"):
            lock_experiment_folder(folder, continuing=False)
    finally:
        child.kill()
        child.wait()
        release_all()


def test_a_link_leading_out_is_refused_one_staying_inside_is_kept(tmp_path) -> None:
    """submitit keeps a link to a job's submission file beside it: a link whose target stays inside
    the folder cannot carry a write out of it; one that leads out (even dangling) is refused."""
    folder = tmp_path / "x"
    (folder / "slurm").mkdir(parents=True)
    (folder / "slurm" / "1_submission.sh").write_text("#!/bin/sh\n")
    (folder / "slurm" / ".submission_file_0.sh").symlink_to(folder / "slurm" / "1_submission.sh")
    acquire(folder).release()
    (folder / "meta").mkdir()
    (folder / "meta" / "records.db").symlink_to(tmp_path / "not_yet_there.db")
    with pytest.raises(ExperimentError, match=r"meta/records.db is a symbolic link"):
        acquire(folder)
    assert not (tmp_path / "not_yet_there.db").exists() and not (folder / LOCK_NAME).exists()
