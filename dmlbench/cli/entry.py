"""The process around a command: exit codes, one-line errors, Ctrl-C and SIGTERM, torchrun."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from dmlbench import warning_display
from dmlbench.cli.dispatch import run
from dmlbench.run_guard import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    debug_enabled,
    report_failure,
    sigterm_as_interrupt,
)
from dmlbench.writer_lock import release_all


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; one line on stderr for any error (exit 2 for bad input, 1 otherwise,
    130 after Ctrl-C, 143 after SIGTERM); the traceback only with --debug / DMLBENCH_DEBUG=1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_enabled(argv)
    failure: dict[str, Any] = {}
    code = 1
    # each warning once, as one line, while the command runs
    with warning_display.installed(), sigterm_as_interrupt() as signals:
        try:
            code = run(argv, failure)
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            code = EXIT_INTERRUPTED
        except Exception as error:
            if debug:
                raise
            return report_failure(error, debug, failure.get("kept"), failure.get("resume"))
        finally:
            release_all()  # the writer locks of this command (and the folders they made, if empty)
            leave_process_group(finished=code == 0)
    return EXIT_TERMINATED if signals["terminated"] and code == EXIT_INTERRUPTED else code


def leave_process_group(finished: bool) -> None:
    """Under torchrun: leave the process group (after waiting for every rank when all finished)."""
    if "torch.distributed" in sys.modules:  # never imports torch for a command that did not
        from dmlbench.training import distributed

        distributed.shutdown(finished)
