"""One writer per experiment folder: an exclusive ``flock`` on ``<folder>/.dmlbench.lock``.

Run, resume, evaluate and search hold it for the whole command (``python -m dmlbench.report``
and ``dmlbench.compare`` need none); a search's jobs hold it on their own folders. The kernel
drops a ``flock`` when its process ends, however it ends, so a dead holder never blocks. The
file holds the holder's ``pid host`` for the refusal message. It is opened without following
a symbolic link, and a folder holding a link anywhere inside is refused once the lock is taken
(:func:`refuse_links`): nothing is ever written through a planted link.

The command that takes the lock removes the file again when it lets go, and with it the folders
it made if they hold nothing else (a refused or failed start leaves the disk as it was). A
process that locked a file another one removed meanwhile sees a different inode at the path and
tries again, so two holders can never lock two different files of one folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from dmlbench.errors import ExperimentError

LOCK_NAME = ".dmlbench.lock"
_ATTEMPTS = 20


@dataclass
class FolderLock:
    """A held lock: its folder, the descriptor, and the folders this process made for it."""

    folder: Path
    descriptor: int
    made: list[Path] = field(default_factory=list)  # outermost first

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def release(self, remove: bool = True) -> None:
        """Let go; with ``remove`` the lock file goes, then each folder this lock made that is
        now empty (innermost first)."""
        if self.descriptor < 0:
            return
        try:
            if remove:
                with contextlib.suppress(OSError):  # gone, or not empty: kept
                    if _same_file(self.path, self.descriptor):
                        os.unlink(self.path)
                for folder in reversed(self.made):
                    with contextlib.suppress(OSError):  # gone, or not empty: kept
                        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                            folder.rmdir()
        finally:
            os.close(self.descriptor)
            self.descriptor = -1
            if _held.get(_key(self.folder)) is self:
                del _held[_key(self.folder)]


_held: dict[str, FolderLock] = {}


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def _same_file(path: Path, descriptor: int) -> bool:
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(descriptor)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def holder(path: Path) -> str:
    """``process PID on HOST`` as the lock file says (``?`` where it cannot be read)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return "process ?"
    try:
        words = os.read(descriptor, 300).decode("utf-8", "replace").split()
    finally:
        os.close(descriptor)
    pid = words[0] if words else "?"
    host = f" on {words[1]}" if len(words) > 1 else ""
    return f"process {pid}{host}"


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its parents that do not exist yet, outermost first."""
    missing = []
    for path in (folder, *folder.absolute().parents):
        if os.path.lexists(path):
            break
        missing.append(path)
    return list(reversed(missing))


def open_lock_file(path: Path) -> int:
    """``path`` opened read-write (made 0o666 less the umask), never through a link: a link is a
    one-line :class:`ExperimentError`."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ExperimentError(
                f"{path} is a symbolic link: dmlbench never writes through links inside an experiment "
                "folder; remove the link and rerun"
            ) from None
        raise


def held(folder: str | Path) -> FolderLock | None:
    """The command lock this process holds on ``folder``, if any."""
    lock = _held.get(_key(Path(folder)))
    return lock if lock is not None and lock.descriptor >= 0 else None


def acquire(
    folder: str | Path, create: bool = True, wait: bool = False, what: str = "experiment"
) -> FolderLock:
    """Take the writer lock of ``folder`` (made first with its parents when ``create``).

    Without ``wait`` a held lock is an :class:`ExperimentError` naming the holder, and a lock this
    process holds already is returned as it is; with ``wait`` it blocks until the holder lets go
    (another thread of this process too)."""
    folder = Path(folder)
    held = None if wait else _held.get(_key(folder))
    if held is not None and held.descriptor >= 0:
        return held
    made: list[Path] = []
    if create:
        made = _missing_folders(folder)
        folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    for _ in range(_ATTEMPTS):
        descriptor = open_lock_file(path)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(descriptor)
            raise ExperimentError(
                f"another dmlbench command ({holder(path)}) is writing {folder}: one writer per "
                f"{what} folder; wait for it to finish or stop it, then rerun"
            ) from None
        except BaseException:
            os.close(descriptor)
            raise
        if not _same_file(path, descriptor):  # its holder removed it while we waited: take the new one
            os.close(descriptor)
            if create:
                folder.mkdir(parents=True, exist_ok=True)
            continue
        lock = FolderLock(folder, descriptor, made)
        try:
            refuse_links(folder)
        except BaseException:
            lock.release()  # the lock file and the folders made for it go again
            raise
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        if not wait:  # a command's lock, let go by release_all; a job's is let go by its caller
            _held[_key(folder)] = lock
        return lock
    raise ExperimentError(f"{path}: could not take the lock (it keeps being replaced); rerun")


def refuse_links(folder: Path) -> None:
    """No symbolic link inside ``folder`` that leads out of it (the folder itself may be one): what
    dmlbench writes there (records.db, TensorBoard events, CSV files, checkpoints, reports) would
    go wherever a planted link points. One line naming the first such link. Links that stay inside
    (submitit's ``.submission_file_*.sh`` in a job's slurm/ folder) are harmless."""
    root = os.path.realpath(folder)
    for parent, folders, files in os.walk(folder, followlinks=False):
        for name in sorted(folders + files):
            path = Path(parent) / name
            if path.is_symlink() and os.path.commonpath([root, os.path.realpath(path)]) != root:
                raise ExperimentError(
                    f"{path} is a symbolic link (to {os.readlink(path)}): dmlbench never writes through "
                    "links inside an experiment folder; replace it by a real file or folder, or remove it"
                )


def release_all() -> None:
    """Let go of every lock this process holds (the end of a command)."""
    for lock in list(_held.values()):
        lock.release()
