"""Progress bars for long work (training, embedding extraction, search), with rate and ETA.

On a terminal the bar refreshes several times a second; in a log file (CI, Slurm) it writes a
line at most every 30 seconds so that logs stay readable.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable

from tqdm.auto import tqdm


def progress(iterable: Iterable | None = None, *, desc: str, unit: str = "it", total: int | None = None,
             leave: bool = False, **kwargs: Any) -> tqdm:
    interactive = sys.stderr.isatty()
    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=leave, dynamic_ncols=True,
                mininterval=0.1 if interactive else 30.0, **kwargs)
