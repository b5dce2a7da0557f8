"""Bad search requests end in one clear line, before anything is trained or written."""

import copy

import pytest

from dmlbench.cli import main
from dmlbench.errors import ConfigError, ExperimentError
from dmlbench.search import state
from dmlbench.search.layout import SearchLayout
from dmlbench.search.space import SearchSpace

MARKER = ["--loss_funcs~APPLY~3", "{pos_margin~BAYESIAN~: [0, 0.5]}"]  # default loss: ContrastiveLoss


def run_cli(tmp_path, capsys, *extra):
    code = main(
        [
            "--experiment_name",
            "x",
            "--root_experiment_folder",
            str(tmp_path / "logs"),
            "--dataset_root",
            str(tmp_path / "data"),
            *extra,
        ]
    )
    return code, capsys.readouterr().err


def test_a_search_key_without_bayes_opt_iters_is_a_one_line_error(tmp_path, capsys):
    code, err = run_cli(tmp_path, capsys, *MARKER)
    assert code == 2
    assert "--bayes_opt_iters" in err and "loss_funcs.metric_loss.ContrastiveLoss.pos_margin" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "logs" / "x").exists()


def test_bayes_opt_iters_without_a_search_key_is_an_error(tmp_path, capsys):
    code, err = run_cli(tmp_path, capsys, "--bayes_opt_iters", "3")
    assert code == 2 and "no search key" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--bayes_opt_iters", "0"], "must be >= 1"),
        (["--bayes_opt_iters", "2", "--reproductions", "-1"], "--reproductions must be >= 0"),
        (["--bayes_opt_iters", "2", "--trial_executor", "slurmm"], "did you mean slurm"),
    ],
)
def test_bad_search_flags_are_errors(tmp_path, capsys, flags, message):
    code, err = run_cli(tmp_path, capsys, *MARKER, *flags)
    assert code == 2 and message in err


def test_an_unknown_class_in_the_search_config_fails_before_the_search(tmp_path, capsys):
    code, err = run_cli(
        tmp_path, capsys, *MARKER, "--bayes_opt_iters", "2", "--loss_funcs~SWAP~2", "{MultiSimilarityLos: {}}"
    )
    assert code == 2 and "Traceback" not in err and "nearest: MultiSimilarityLoss" in err
    assert not (tmp_path / "logs" / "x" / "trials" / "ax_state.json").exists()


CONFIG = {
    "config_general": {"seed": 0, "slurm": {"partition": "a"}},
    "config_loss_and_miners": {
        "loss_funcs": {"metric_loss": {"MultiSimilarityLoss": {"alpha~LOG_BAYESIAN~": [0.1, 10.0]}}}
    },
}


def open_search(layout, config, sobol=None):
    return state.open_search(layout, config, SearchSpace(config), "mean_average_precision_at_r", 0, sobol, 4)


def test_continuing_a_search_with_another_config_names_the_difference(tmp_path):
    layout = SearchLayout(tmp_path / "exp")
    open_search(layout, CONFIG)
    other = copy.deepcopy(CONFIG)
    loss = other["config_loss_and_miners"]["loss_funcs"]["metric_loss"]["MultiSimilarityLoss"]
    loss["alpha~LOG_BAYESIAN~"] = [0.1, 5]
    with pytest.raises(ExperimentError, match=r"differs in: loss_funcs\)"):
        open_search(layout, other)
    moved = copy.deepcopy(CONFIG)
    moved["config_general"]["slurm"] = {"partition": "b"}  # where jobs run is not part of the search
    assert state.search_config_hash(moved) == state.search_config_hash(CONFIG)
    assert open_search(layout, moved).trials() == []
    with pytest.raises(ConfigError, match="--sobol_trials 3: this search started with 2"):
        open_search(layout, CONFIG, sobol=3)


def test_a_folder_holding_another_kind_of_experiment_is_not_taken_over(tmp_path):
    layout = SearchLayout(tmp_path / "exp")
    (layout.experiment_dir / "configs").mkdir(parents=True)
    with pytest.raises(ExperimentError, match="not a search"):
        open_search(layout, CONFIG)


def test_a_second_search_process_on_the_same_folder_is_refused(tmp_path):
    """The search holds the folder's writer lock, the one run.py takes: another process holding
    it (here a plain child process) refuses the search, naming the holder; the command's own
    lock is reused, not taken twice."""
    import subprocess
    import sys

    from dmlbench.search.state import search_lock
    from dmlbench.writer_lock import LOCK_NAME, acquire, release_all

    layout = SearchLayout(tmp_path / "exp")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from dmlbench.writer_lock import acquire; "
            f"acquire({str(layout.experiment_dir)!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = pytest.raises(
            ExperimentError, match=rf"\(process {holder.pid} .*one writer per search folder"
        )
        with refused, search_lock(layout):
            pass
    finally:
        holder.kill()
        holder.wait()
    with search_lock(layout):  # free again once the holder is gone
        assert (layout.experiment_dir / LOCK_NAME).exists()
    assert not (layout.experiment_dir / LOCK_NAME).exists()  # let go: the file goes with it
    command = acquire(layout.experiment_dir)  # as run.py holds it for the whole command
    try:
        with search_lock(layout):
            pass
        assert command.descriptor >= 0  # the search left the command's lock held
    finally:
        release_all()


def test_a_second_copy_of_a_job_waits_for_the_first_then_reads_its_result(tmp_path):
    import json
    import threading
    import time

    from dmlbench.search.jobs import folder_lock, run_job

    folder = tmp_path / "trial_0000"
    (folder / "meta").mkdir(parents=True)
    returned = []
    with folder_lock(folder):
        thread = threading.Thread(target=lambda: returned.append(run_job("trial", folder, tmp_path)))
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive() and not returned  # blocked on the lock
        (folder / "meta" / "trial_result.json").write_text(json.dumps({"mean": 0.25, "sem": None}))
    thread.join(timeout=10)
    assert returned == [{"mean": 0.25, "sem": None}]  # not rerun: the first copy's result


def test_a_search_refused_before_its_state_leaves_no_lock_or_folder(tmp_path):
    fresh = SearchLayout(tmp_path / "fresh")
    with pytest.raises(ConfigError, match="refused"), state.search_lock(fresh):
        assert (fresh.experiment_dir / ".dmlbench.lock").exists()
        raise ConfigError("refused")
    assert not fresh.experiment_dir.exists()

    other = SearchLayout(tmp_path / "other")  # an experiment that is not a search: its files stay
    (other.experiment_dir / "configs").mkdir(parents=True)
    with pytest.raises(ExperimentError, match="not a search"), state.search_lock(other):
        open_search(other, CONFIG)
    assert sorted(p.name for p in other.experiment_dir.iterdir()) == ["configs"]

    kept = SearchLayout(tmp_path / "kept")  # once search.json is written the folder is a search
    with pytest.raises(RuntimeError), state.search_lock(kept):
        open_search(kept, CONFIG)
        raise RuntimeError("killed later")
    assert kept.settings_path.exists() and not (kept.experiment_dir / ".dmlbench.lock").exists()
