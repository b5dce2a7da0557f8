"""Progress bars for long work (training, embedding extraction, search), with rate and ETA.

On a terminal the bar refreshes several times a second and moves with every batch; in a log
file (CI, Slurm) it writes a line at most every 10 seconds so that logs stay readable. In a
process of rank > 0 (torchrun, or a job over several Slurm tasks: ``RANK`` in the environment)
there is no bar: rank 0 shows the progress of all.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def progress(
    iterable: Iterable | None = None,
    *,
    desc: str,
    unit: str = "it",
    total: int | None = None,
    leave: bool = False,
    **kwargs: Any,
) -> tqdm:
    kwargs.setdefault("mininterval", 0.1 if sys.stderr.isatty() else 10.0)
    if os.environ.get("RANK", "0") != "0":
        kwargs["disable"] = True
    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=leave, dynamic_ncols=True, **kwargs)


def advance(bar: tqdm, **postfix: Any) -> None:
    """One step of a manually driven bar with its postfix (e.g. the running loss). The postfix is
    set without a refresh of its own and the counter moves in the same redraw: a bar iterated with
    ``for x in bar`` counts locally and a ``set_postfix`` redraw would show a stale count."""
    if postfix:
        bar.set_postfix(postfix, refresh=False)
    bar.update(1)
