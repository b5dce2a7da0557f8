"""Ax's own cost per trial as a search grows past MLRC's 50 trials, and the state file's size.

    python bench/rehearsal/ax_trials.py --trials 60 --json bench/results/rehearsal_ax_cpu.json

The search's optimizer (dmlbench.search.optimizer.AxSearch: Sobol, then Ax's "fast" BoTorch node;
the state reloaded from its JSON file before each proposal and saved after each change, as a
search does) on MLRC's MultiSimilarity space (alpha, beta log-uniform, base uniform), with a
smooth synthetic objective and an SEM per trial. Recorded per trial: seconds to propose, seconds
to complete (both include the JSON save), and the state file's size.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dmlbench.search.optimizer import AxSearch, default_sobol_trials
from dmlbench.search.space import SearchSpace

SPACE = {
    "config_loss_and_miners": {
        "loss_funcs": {
            "metric_loss": {
                "MultiSimilarityLoss": {
                    "alpha~LOG_BAYESIAN~": [0.01, 100],
                    "beta~LOG_BAYESIAN~": [0.01, 100],
                    "base~BAYESIAN~": [0, 1],
                }
            }
        }
    }
}


def objective(values: dict[str, float]) -> float:
    """A smooth bump in (log alpha, log beta, base), peaking at MLRC's CUB optimum."""
    a, b, c = math.log10(values["alpha"]), math.log10(values["beta"]), values["base"]
    return 0.25 * math.exp(-((a + 2) ** 2 + (b - 1.7) ** 2) / 8 - (c - 0.56) ** 2 * 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    space = SearchSpace(SPACE)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "ax_state.json"
        search = AxSearch.create(space, "map_at_r", 0, default_sobol_trials(50), state)
        for _ in range(args.trials):
            start = time.perf_counter()
            proposed = search.propose(1)
            propose_s = time.perf_counter() - start
            ((index, parameters),) = proposed.items()
            values = space.decode(parameters)
            flat = {name.split(".")[-1].split("~")[0]: value for name, value in values.items()}
            start = time.perf_counter()
            search.complete(index, "map_at_r", objective(flat), 0.005)
            complete_s = time.perf_counter() - start
            rows.append(
                {
                    "trial": index,
                    "propose_s": propose_s,
                    "complete_s": complete_s,
                    "state_bytes": state.stat().st_size,
                }
            )
            print(f"trial {index}: propose {propose_s:.2f} s, complete {complete_s:.2f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"trials": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
