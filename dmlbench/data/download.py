"""Fetching data set archives: resumable HTTP downloads, checksums, safe unpacking.

A download goes to ``<file>.part`` and is renamed to ``<file>`` only once it is complete and its
checksum matches. A rerun after an interruption asks the server for the missing bytes only
(HTTP ``Range: bytes=<size of .part>-``); a server that ignores the range sends the whole file,
which then replaces the partial one. Several URLs (mirrors) are tried in order.

Archives are unpacked by :mod:`dmlbench.data.unpacking` (safely). A failed download leaves no
folder it created empty.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dmlbench.data.unpacking import ARCHIVE_SUFFIXES, unpack
from dmlbench.errors import DatasetError

__all__ = ["RemoteFile", "download_dataset", "fetch", "unpack"]

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
USER_AGENT = "dmlbench-data-download/1.0 (+python urllib)"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set as published: where to get it and how to recognise it.

    ``subdir`` is where the file goes, relative to the user's root; an archive is unpacked
    there. ``md5``/``sha256`` are the published checksums (None where none is published:
    the download then proceeds with a warning); ``sha256_prefix`` is the leading hex digits of
    the sha256 that ``torch.hub`` weight files carry in their names (``resnet50-0676ba61.pth``). ``size_hint`` is for messages only. An
    ``optional`` file that cannot be fetched only causes a warning.
    """

    filename: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    subdir: str = ""
    size_hint: str = ""
    optional: bool = False

    @property
    def is_archive(self) -> bool:
        return self.filename.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass
class _Attempt:
    url: str
    reason: str


@dataclass
class DownloadReport:
    """What :func:`fetch` did: the final path and the mirrors that failed before it."""

    path: Path
    failed: list[_Attempt] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# checksums


def file_digest(path: str | Path, algorithm: str, progress: bool = False) -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    size = os.path.getsize(path)
    with (
        open(path, "rb") as handle,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"{algorithm} {Path(path).name}",
            disable=not progress or size < 64 * CHUNK_BYTES,
        ) as bar,
    ):
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def checksum_problem(path: Path, remote: RemoteFile, progress: bool = False) -> str | None:
    """None when the file matches every published checksum, else a one-line description."""
    for algorithm, expected in (("md5", remote.md5), ("sha256", remote.sha256)):
        if expected:
            actual = file_digest(path, algorithm, progress)
            if actual.lower() != expected.lower():
                return f"{algorithm} mismatch for {remote.filename}: expected {expected}, got {actual}"
    if remote.sha256_prefix:
        actual = file_digest(path, "sha256", progress)
        if not actual.lower().startswith(remote.sha256_prefix.lower()):
            return (
                f"sha256 mismatch for {remote.filename}: expected it to start with {remote.sha256_prefix}, "
                f"got {actual}"
            )
    return None


@contextlib.contextmanager
def folders_removed_if_failed(folder: Path) -> Iterator[None]:
    """Create ``folder`` (and missing parents); if the ``with`` block raises, remove the ones it
    created that are still empty, so a failed download leaves no empty folders behind."""
    folder = Path(folder)
    created = [path for path in [folder, *folder.parents] if not path.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in created:
            try:
                path.rmdir()
            except OSError:  # not empty (a partial download to resume), or not ours to remove
                break
        raise


# --------------------------------------------------------------------------------------------
# one HTTP transfer


def _describe_network_error(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"network error: {error.reason}"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    return f"{type(error).__name__}: {error}"


def _transfer(
    url: str,
    part: Path,
    timeout: float,
    progress: bool,
    urlopen: Callable[..., Any],
) -> None:
    """Append the missing bytes of ``url`` to ``part`` (or rewrite it when the server does not
    honour the range). Raises the network error as is."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the partial file is complete
            return
        raise
    with response:
        status = getattr(response, "status", None) or response.getcode()
        resumed = offset > 0 and status == 206
        if offset and not resumed:
            logger.warning("%s: server ignored the resume request; downloading from the start", url)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        mode = "ab" if resumed else "wb"
        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name[: -len(".part")],
                disable=not progress,
                miniters=1,
            ) as bar,
        ):
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and part.stat().st_size < total:
            raise ConnectionError(f"connection closed after {part.stat().st_size} of {total} bytes")


def fetch(
    remote: RemoteFile,
    folder: str | Path,
    *,
    dataset: str = "",
    progress: bool = True,
    timeout: float = 60.0,
    urlopen: Callable[..., Any] = urllib.request.urlopen,
) -> DownloadReport:
    """Download ``remote`` into ``folder`` (resuming ``<file>.part``), verify, rename.

    A file already complete at ``folder/<filename>`` is verified and kept. Raises
    :class:`DatasetError` naming every mirror's failure when no mirror delivers a file with the
    published checksum.
    """
    folder = Path(folder)
    with folders_removed_if_failed(folder):
        return _fetch_into(remote, folder, dataset, progress, timeout, urlopen)


def _fetch_into(
    remote: RemoteFile,
    folder: Path,
    dataset: str,
    progress: bool,
    timeout: float,
    urlopen: Callable[..., Any],
) -> DownloadReport:
    final = folder / remote.filename
    part = folder / (remote.filename + ".part")
    prefix = f"{dataset}: " if dataset else ""
    report = DownloadReport(final)
    if not (remote.md5 or remote.sha256 or remote.sha256_prefix):
        logger.warning(
            "%sno published checksum for %s; it will be downloaded without verification",
            prefix,
            remote.filename,
        )
    if final.exists():
        problem = checksum_problem(final, remote, progress)
        if problem is None:
            return report
        logger.warning("%s%s; downloading it again", prefix, problem)
        final.unlink()

    for url in remote.urls:
        try:
            _transfer(url, part, timeout, progress, urlopen)
        except (OSError, ValueError, http.client.HTTPException) as error:  # URLError is an OSError
            report.failed.append(_Attempt(url, _describe_network_error(error)))
            continue
        problem = checksum_problem(part, remote, progress)
        if problem is not None:
            part.unlink()
            report.failed.append(_Attempt(url, problem))
            continue
        os.replace(part, final)
        return report

    reasons = "; ".join(f"{attempt.url} ({attempt.reason})" for attempt in report.failed)
    kept = f"; partial download kept at {part}, rerun to resume" if part.exists() else ""
    raise DatasetError(
        f"{prefix}could not download {remote.filename}: {reasons}{kept}; check the network "
        f"connection, or fetch the file by hand into {folder}"
    )


# --------------------------------------------------------------------------------------------
# whole data sets


def download_dataset(
    dataset_cls: Any,
    root: str | Path,
    *,
    progress: bool = True,
    keep_archives: bool = False,
    timeout: float = 60.0,
    urlopen: Callable[..., Any] = urllib.request.urlopen,
) -> Path:
    """Make ``dataset_cls``'s tree exist under ``root``; return the data set's folder.

    Uses the class attributes of :class:`dmlbench.data.official.OfficialFormatDataset`:
    ``remote_files`` (fetched, verified, unpacked, archives then removed unless
    ``keep_archives``) or ``manual_download`` (instructions raised as a :class:`DatasetError`).
    Nothing is fetched when the tree is already there.
    """
    name = dataset_cls.registry_name
    root = Path(root).expanduser()
    found = dataset_cls.find_folder(root)
    if found is not None:
        logger.info("%s: already present at %s", name, found)
        return found
    if dataset_cls.manual_download:
        raise DatasetError(f"{name}: " + dataset_cls.manual_download.format(root=root))
    if not dataset_cls.remote_files:
        raise DatasetError(f"{name} reads your own files; there is nothing to download")
    with folders_removed_if_failed(root):
        _download_files(dataset_cls, root, progress, keep_archives, timeout, urlopen)
    found = dataset_cls.find_folder(root)
    if found is None:
        raise DatasetError(
            f"{name}: downloaded and unpacked into {root}, but {dataset_cls.expected_marker(root)} "
            f"is still missing; the archive layout may have changed"
        )
    return found


def _download_files(
    dataset_cls: Any,
    root: Path,
    progress: bool,
    keep_archives: bool,
    timeout: float,
    urlopen: Callable[..., Any],
) -> None:
    name = dataset_cls.registry_name
    if shutil.disk_usage(root).free < 1 << 30:
        logger.warning("%s: less than 1 GiB free under %s", name, root)
    for remote in dataset_cls.remote_files:
        folder = root / remote.subdir
        try:
            report = fetch(remote, folder, dataset=name, progress=progress, timeout=timeout, urlopen=urlopen)
        except DatasetError as error:
            if not remote.optional:
                raise
            logger.warning("%s (optional file, continuing without it)", error)
            continue
        for attempt in report.failed:
            logger.warning("%s: mirror %s failed (%s)", name, attempt.url, attempt.reason)
        if remote.is_archive:
            unpack(report.path, folder, progress=progress)
            if not keep_archives:
                report.path.unlink()
