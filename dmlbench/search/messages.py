"""What a search prints for a user: readable generator names, and Ax's own notices turned into
lines the user can act on (library FutureWarnings are silenced during a search)."""

from __future__ import annotations

import logging
import sys
import warnings

#: Ax's generation-node names -> what the report and the log say.
GENERATOR_LABELS = {
    "Sobol": "Sobol (quasi-random)",
    "MBM": "Bayesian optimisation",
    "BoTorch": "Bayesian optimisation",
    "BO_MIXED": "Bayesian optimisation",
    "CenterOfSearchSpace": "centre of the space",
    "manual": "manual",
}

CONSTANT_OUTCOME = (
    "warning: every finished trial so far has the same objective value, so Bayesian "
    "optimisation cannot tell the parameters apart; check that training learns at all "
    "(the trials' logs), train longer (num_epochs_train), or widen the ~BAYESIAN~ ranges"
)


def generator_label(node: str) -> str:
    """A readable name for Ax's generation node of a trial (unknown names are kept)."""
    return GENERATOR_LABELS.get(node, node)


class ConstantOutcomeFilter(logging.Filter):
    """Replaces Ax's "Outcome <metric> is constant, within tolerance." by :data:`CONSTANT_OUTCOME`,
    printed once per process."""

    printed = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "is constant" not in record.getMessage():
            return True
        if not ConstantOutcomeFilter.printed:
            ConstantOutcomeFilter.printed = True
            print(CONSTANT_OUTCOME, file=sys.stderr)
        return False


def quiet_libraries() -> None:
    """No FutureWarnings from the libraries a search pulls in (torch.jit, pandas, Ax ...), and
    Ax's constant-outcome notice as one actionable line."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    logger = logging.getLogger("ax.adapter.transforms.standardize_y")
    if not any(isinstance(f, ConstantOutcomeFilter) for f in logger.filters):
        logger.addFilter(ConstantOutcomeFilter())
