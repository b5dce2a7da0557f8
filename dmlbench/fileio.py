"""Atomic file writes, the one helper every writer uses: nothing half-written on disk after a
crash or a kill.

The content goes to a hidden temp file beside the target (created with mode 0o666 less the
process umask, as ``open`` would), is fsynced, and replaces the target with ``os.replace``;
then the folder is fsynced so that the rename itself is durable where the platform allows it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from dmlbench.errors import StorageError

#: errno -> what the disk said, for the one-line message (:func:`storage_error`).
_STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
#: sqlite3's words for the same conditions (it raises no OSError).
_SQLITE_WORDS = {"disk is full": errno.ENOSPC, "readonly database": errno.EROFS}


def storage_error(error: BaseException, path: str | Path | None = None) -> StorageError | None:
    """The one-line :class:`StorageError` for an error caused by a full, read-only or forbidden
    disk (looked for along the exception's causes: ``torch.save`` hides the ``OSError`` behind a
    ``RuntimeError``), naming ``path`` (or the error's own file name); None for any other error."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return None
        code = getattr(seen, "errno", None) if isinstance(seen, OSError) else None
        if code is None and type(seen).__name__ == "OperationalError":  # sqlite3
            code = next((c for words, c in _SQLITE_WORDS.items() if words in str(seen)), None)
        if code in _STORAGE_ERRNOS:
            where = path or getattr(seen, "filename", None) or "a file"
            if code in (errno.ENOSPC, errno.EDQUOT):
                return StorageError(
                    f"{_STORAGE_ERRNOS[code]} writing {where}: free some space there, then rerun"
                )
            if code == errno.EROFS:
                return StorageError(
                    f"{_STORAGE_ERRNOS[code]}: cannot write {where}; use a --root_experiment_folder on a writable "
                    "disk (copy an experiment folder there to continue it)",
                    read_only=True,
                )
            return StorageError(f"{_STORAGE_ERRNOS[code]} writing {where}: check the folder's owner and mode")
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def disk_errors(path: str | Path) -> Iterator[None]:
    """Within the block, an error a full, read-only or forbidden disk caused is raised as its
    one-line :class:`StorageError` naming ``path`` (:func:`storage_error`); others pass unchanged."""
    try:
        yield
    except Exception as error:
        mapped = storage_error(error, path)
        if mapped is not None:
            raise mapped from error
        raise


def umask_mode(mode: int = 0o777) -> int:
    """``mode`` less the process umask: what ``mkdir``/``open`` would give (for ``chmod`` after
    ``tempfile.mkdtemp``/``mkstemp``, which make private 0o700/0o600 entries)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def fsync_folder(folder: Path) -> None:
    """fsync a folder (best effort: not every platform allows it)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def writes_files() -> bool:
    """False in the processes of a torchrun job other than rank 0: only rank 0 writes files."""
    return os.environ.get("RANK", "0") == "0" or int(os.environ.get("WORLD_SIZE", "1")) <= 1


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temp file beside ``path``; on success fsync and ``os.replace`` it into place.

    On any exception the temp file is removed and ``path`` keeps its previous content (a kill
    leaves at most a hidden ``.tmp`` file).
    """
    if not writes_files():
        with open(os.devnull, mode) as discarded:  # torchrun: only rank 0 writes files
            yield discarded
        return
    path = Path(path)
    temp = _temp_path(path)
    with disk_errors(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(descriptor, mode, encoding=None if "b" in mode else "utf-8") as file:
                yield file
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise
    fsync_folder(path.parent)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as file:
        file.write(text)


def write_text_from_any_rank(path: str | Path, text: str, exclusive: bool = False) -> bool:
    """Write ``path`` atomically in any process, whatever its torchrun rank (for error reports).
    ``exclusive``: only if it does not exist yet (a temp file hard-linked into place, so of several
    writers exactly one succeeds). -> whether it wrote."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(path)
    try:
        with open(temp, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if exclusive:
            os.link(temp, path)
        else:
            os.replace(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)
    fsync_folder(path.parent)
    return True


def replace_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """For writers that need a file name (a library's ``save(path)``): ``write(temp)``, fsync the
    temp file, then ``os.replace`` it over ``path``; on failure the temp file is removed."""
    path = Path(path)
    temp = _temp_path(path)
    with disk_errors(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(temp)
            with open(temp, "rb") as file:
                os.fsync(file.fileno())
            os.replace(temp, path)
        finally:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
    fsync_folder(path.parent)
