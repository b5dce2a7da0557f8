"""--trials_per_gpu: local_parallel runs K trials per GPU, each new one on the least busy GPU."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dmlbench.errors import ConfigError
from dmlbench.search.executor_factory import make_executor
from dmlbench.search.executors import ProcessExecutor
from dmlbench.search.settings import SearchSettings


class Running:
    def __init__(self, gpu: str, finished: bool = False) -> None:
        self.gpu, self.finished = gpu, finished

    def done(self) -> bool:
        return self.finished


def test_capacity_and_gpu_choice(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    executor = make_executor("local_parallel", {}, None, trials_per_gpu=3)
    assert executor.capacity == 6  # 2 GPUs x 3 trials
    executor.running = [Running("0"), Running("0"), Running("1")]
    assert executor._free_gpu() == "1"
    executor.running.append(Running("1"))
    assert executor._free_gpu() == "0"  # a tie goes to the first GPU
    executor.running += [Running("0", finished=True)] * 5  # finished jobs do not count
    assert executor._free_gpu() == "0"
    assert ProcessExecutor(capacity=5, trials_per_gpu=3).capacity == 5  # --max_parallel_trials wins


def args(**kw):
    base = dict(
        bayes_opt_iters=2,
        reproductions=0,
        sobol_trials=None,
        trial_executor="local_parallel",
        max_parallel_trials=None,
        dataset_root=".",
        trials_per_gpu=1,
    )
    return SimpleNamespace(**{**base, **kw})


def test_flag_checked_with_its_executor():
    assert SearchSettings.from_args(args(trials_per_gpu=4)).trials_per_gpu == 4
    with pytest.raises(ConfigError, match="--trials_per_gpu 0"):
        SearchSettings.from_args(args(trials_per_gpu=0))
    with pytest.raises(ConfigError, match="only with --trial_executor local_parallel"):
        SearchSettings.from_args(args(trials_per_gpu=2, trial_executor="local"))


def test_trials_per_gpu_without_a_gpu_says_it_has_no_effect(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert make_executor("local_parallel", {}, None, trials_per_gpu=3).capacity == 2
    assert (
        "--trials_per_gpu 3 has no effect without a visible GPU; 2 trials run at once"
        in capsys.readouterr().err
    )
    make_executor("local_parallel", {}, None, trials_per_gpu=1)
    assert capsys.readouterr().err == ""
