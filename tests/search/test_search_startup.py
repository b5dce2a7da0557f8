"""A search's start-up is resumable at every moment, and a resumed search proposes exactly the
points the uninterrupted one proposes (the client's seed, which Ax's snapshot drops, restored)."""

from __future__ import annotations

import json

from dmlbench.search import state
from dmlbench.search.layout import SearchLayout
from dmlbench.search.space import SearchSpace

CONFIG = {
    "config_general": {"seed": 7},
    "config_loss_and_miners": {
        "loss_funcs": {
            "metric_loss": {
                "MultiSimilarityLoss": {"alpha~LOG_BAYESIAN~": [0.01, 100.0], "beta~BAYESIAN~": [1, 60]}
            }
        }
    },
}
METRIC = "mean_average_precision_at_r"


def open_search(layout: SearchLayout):
    return state.open_search(layout, CONFIG, SearchSpace(CONFIG), METRIC, 7, 2, 5)


def objective(parameters: dict) -> float:
    """A made-up smooth objective of the proposed point (what a trial would report)."""
    alpha, beta = parameters.values()
    return 1.0 / (1.0 + (alpha - 2.0) ** 2) + beta / 100.0


def run_rounds(layout: SearchLayout, rounds: int, reload_every_round: bool) -> list[dict]:
    """Propose and complete one trial per round; optionally reopen the search before each round
    (what a rerun after a kill does)."""
    search = open_search(layout)
    proposals = []
    for _ in range(rounds):
        if reload_every_round:
            search = open_search(layout)
        ((index, parameters),) = search.propose(1).items()
        proposals.append(parameters)
        search.complete(index, METRIC, objective(parameters), 0.01)
    return proposals


def test_a_resumed_search_proposes_exactly_the_uninterrupted_points(tmp_path) -> None:
    straight = run_rounds(SearchLayout(tmp_path / "straight"), 4, reload_every_round=False)
    resumed = run_rounds(SearchLayout(tmp_path / "resumed"), 4, reload_every_round=True)
    assert json.dumps(resumed) == json.dumps(straight)  # exact, both Sobol and Bayesian ones
    assert len({json.dumps(p) for p in straight}) == 4


def test_a_start_killed_after_its_identity_is_written_starts_again(tmp_path) -> None:
    """search.json on disk without ax_state.json (a start killed between the two writes, as an
    older version left it) and no trial yet: the start is made again, with the saved seed."""
    layout = SearchLayout(tmp_path / "s")
    first = open_search(layout).propose(1)
    layout.ax_state_path.unlink()
    again = open_search(layout)
    assert again.trials() == [] and again.propose(1) == first


def test_a_start_killed_after_ax_state_but_before_its_identity_starts_again(tmp_path) -> None:
    layout = SearchLayout(tmp_path / "s")
    first = open_search(layout).propose(1)
    layout.settings_path.unlink()  # what a kill between the two writes leaves
    again = open_search(layout)
    assert layout.settings_path.exists() and again.trials() == [] and again.propose(1) == first
