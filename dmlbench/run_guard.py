"""What the command line does around a run so that nothing is lost and nothing is half-made:

- the experiment name is a plain folder name (no path can escape ``--root_experiment_folder``);
- SIGTERM (what Slurm sends before preemption) is handled like Ctrl-C: the checkpoints on disk
  are consistent (every write is atomic), one line says how to continue, exit code 143;
- any error prints one line (exit 2 for bad input, 1 otherwise); the traceback only with
  ``--debug`` or ``DMLBENCH_DEBUG=1``;
- a folder made by the failed command that holds no checkpoint yet is removed; one with
  checkpoints is kept and the message says how to resume it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dmlbench.errors import ConfigError, ExperimentError
from dmlbench.writer_lock import LOCK_NAME, acquire

DEFAULT_ROOT = "logs"
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM
#: Longest file name most file systems take (ext4, xfs, btrfs, APFS: 255 bytes).
MAX_NAME_BYTES = 255


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives (handled wherever Ctrl-C is)."""


def check_experiment_name(name: str) -> str:
    """``name`` if it is a plain folder name; a :class:`ConfigError` for anything that would be a
    path (``/``, ``\\``, ``..``, ``.``, an absolute path, a NUL byte, an empty name)."""
    if (
        not name.strip()
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or os.path.isabs(name)
        or name != name.strip()
    ):
        raise ConfigError(
            f"--experiment_name {name!r}: must be a plain folder name (no '/', '..' or absolute path); "
            "put the parent folder in --root_experiment_folder"
        )
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ConfigError(
            f"--experiment_name {name[:40]}...: {len(name.encode('utf-8'))} bytes long; a folder name "
            f"may have at most {MAX_NAME_BYTES} (choose a shorter name)"
        )
    return name


def check_root_folder(root: str | Path) -> None:
    """A ``--root_experiment_folder`` (or one of its parents) that is a file: one line naming it."""
    for path in (Path(root), *Path(root).absolute().parents):
        if os.path.lexists(path):
            if not path.is_dir():
                raise ExperimentError(
                    f"--root_experiment_folder {root}: {path} is a file, not a folder; "
                    "choose another --root_experiment_folder"
                )
            return


def lock_experiment_folder(experiment_dir: Path, continuing: bool) -> None:
    """Take the folder's writer lock (:mod:`dmlbench.writer_lock`) before anything is read or
    written there; a new experiment's folder is made for it. A folder to continue that does not
    exist is left to the caller's one-line error (nothing is made)."""
    check_root_folder(experiment_dir.parent)
    if os.path.lexists(experiment_dir) and not experiment_dir.is_dir():
        raise ExperimentError(f"{experiment_dir} is a file, not an experiment folder; choose another name")
    if continuing and not experiment_dir.is_dir():
        return
    if int(os.environ.get("RANK", "0")) > 0:
        return  # torchrun: rank 0 writes the folder and holds its lock for the whole job
    acquire(experiment_dir, create=True)


def holds_files(directory: Path) -> bool:
    """Whether ``directory`` exists and holds anything besides the writer lock file."""
    return directory.is_dir() and any(entry.name != LOCK_NAME for entry in directory.iterdir())


def clear_folder(directory: Path) -> None:
    """Remove everything inside ``directory`` except the writer lock file; the folder itself (a
    link, or one that existed before the command) stays, and no link is followed."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def debug_enabled(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("DMLBENCH_DEBUG", "") not in ("", "0")


def has_checkpoints(directory: Path) -> bool:
    return any(Path(directory).glob("*/checkpoints/*.pt"))


def resume_command(args: Any, experiment_dir: Path, plugin_paths: list[str] | None = None) -> str:
    """The command that continues ``experiment_dir``, with every option it needs (the consent to
    import its ``plugin_paths`` too)."""
    parts = ["python", "run.py", "--experiment_name", experiment_dir.name]
    if str(args.root_experiment_folder) != DEFAULT_ROOT:
        parts += ["--root_experiment_folder", str(args.root_experiment_folder)]
    parts += ["--dataset_root", str(args.dataset_root)]
    if getattr(args, "root_config_folder", None):
        parts += ["--root_config_folder", str(args.root_config_folder)]
    if plugin_paths:
        parts += ["--plugin_paths", f"[{', '.join(plugin_paths)}]"]
    return shlex.join(parts + ["--resume_training", "latest"])


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[dict[str, bool]]:
    """Within the block SIGTERM raises :class:`Terminated`; yields ``{"terminated": bool}``."""
    seen = {"terminated": False}

    def handler(signum: int, frame: Any) -> None:
        seen["terminated"] = True
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield seen
        return
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)


def report_failure(error: BaseException, debug: bool, kept: Path | None, resume: str | None) -> int:
    """Print the one line for ``error`` (and the resume command if a folder with checkpoints was
    kept); -> the exit code (2 for bad input, 1 for anything else)."""
    from dmlbench.errors import CorruptFileError, DMLBenchError, StorageError
    from dmlbench.fileio import storage_error

    if not isinstance(error, DMLBenchError):
        error = storage_error(error) or error  # a full, read-only or forbidden disk: one plain line
    user_error = isinstance(error, DMLBenchError)
    if isinstance(error, CorruptFileError) or (isinstance(error, StorageError) and error.read_only):
        kept = None  # its own message says what to do (a resume on a read-only disk cannot work)
    if debug and not user_error:
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    message = one_line(error) if user_error else f"{type(error).__name__}: {one_line(error)}"
    tail = f" -- {kept} keeps its checkpoints; continue with: {resume}" if kept is not None and resume else ""
    hint = "" if user_error or debug else " (run with --debug or DMLBENCH_DEBUG=1 for the traceback)"
    print(f"error: {message}{tail}{hint}", file=sys.stderr)
    return 2 if user_error else 1


#: What a run writes into an experiment folder before its first checkpoint.
_START_FILES = ("config_", "command_line.txt", "split_manifest.json", "resume_diff_")


def is_partial_start(directory: Path) -> bool:
    """Whether ``directory`` holds only what a run writes before its first checkpoint (configs,
    an empty meta/ or tensorboard/ folder): a start that was killed, safe to begin again."""
    directory = Path(directory)
    configs = directory / "configs"
    if not configs.is_dir() or has_checkpoints(directory):
        return False
    for entry in directory.iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.name == "configs":
            if any(not (f.name.startswith(_START_FILES) or f.name.endswith(".tmp")) for f in entry.iterdir()):
                return False
        elif entry.name == "meta":
            if any(f.name not in ("records.db", "records.db-wal", "records.db-shm") for f in entry.iterdir()):
                return False
        elif entry.is_dir():
            if any(f.name not in ("checkpoints", "tensorboard") for f in entry.iterdir()):
                return False
        elif not entry.name.endswith(".tmp"):
            return False
    return True
