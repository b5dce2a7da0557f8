"""Fetching data set archives: resumable HTTP downloads, checksums, safe unpacking.

A download goes to ``<file>.part`` and is renamed to ``<file>`` only once it is complete and its
checksum matches. A rerun after an interruption asks the server for the missing bytes only
(HTTP ``Range: bytes=<size of .part>-``); a server that ignores the range sends the whole file,
which then replaces the partial one. Several URLs (mirrors) are tried in order.

Archives (.zip, .tar, .tar.gz, .tgz) are unpacked without letting a member escape the target
folder (no absolute paths, no ``..``, no links pointing outside, nothing tarfile's ``data`` filter
refuses, no file over a folder); a failed unpacking removes what it extracted.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import socket
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dmlbench.errors import DatasetError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
USER_AGENT = "dmlbench-data-download/1.0 (+python urllib)"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set as published: where to get it and how to recognise it.

    ``subdir`` is where the file goes, relative to the user's root; an archive is unpacked
    there. ``md5``/``sha256`` are the published checksums (None where none is published:
    the download then proceeds with a warning). ``size_hint`` is for messages only. An
    ``optional`` file that cannot be fetched only causes a warning.
    """

    filename: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
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
    return None


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
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / remote.filename
    part = folder / (remote.filename + ".part")
    prefix = f"{dataset}: " if dataset else ""
    report = DownloadReport(final)
    if not (remote.md5 or remote.sha256):
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
# unpacking


def _inside(target: Path, member_name: str) -> bool:
    resolved = (target / member_name).resolve()
    return resolved == target or target in resolved.parents


def _check_tar_members(archive: Path, members: Iterable[tarfile.TarInfo], target: Path) -> None:
    for member in members:
        if os.path.isabs(member.name) or not _inside(target, member.name):
            raise DatasetError(f"unsafe path {member.name!r} in {archive}; refusing to unpack it")
        if member.issym() or member.islnk():
            # a symlink is relative to its own folder, a hard link to the archive root
            base = Path(member.name).parent if member.issym() else Path()
            if os.path.isabs(member.linkname) or not _inside(target, str(base / member.linkname)):
                raise DatasetError(
                    f"link {member.name!r} -> {member.linkname!r} in {archive} points outside "
                    f"{target}; refusing to unpack it"
                )
        elif not (member.isfile() or member.isdir()):
            raise DatasetError(f"special file {member.name!r} in {archive}; refusing to unpack it")


def _check_collisions(archive: Path, entries: list[tuple[str, bool | None]], target: Path) -> None:
    """Refuse a file member whose name is a folder (on disk, or a member's parent folder in the
    archive): unpacking would fail half-way with "Is a directory". ``(name, is_dir)``; links
    (``is_dir`` None) are left to the link checks and tarfile's data filter."""
    folders = {str(parent) for name, _ in entries for parent in Path(name).parents if str(parent) != "."}
    folders |= {str(Path(name)) for name, is_dir in entries if is_dir}
    for name, is_dir in entries:
        if is_dir is None:
            continue
        if is_dir:
            if (target / name).exists() and not (target / name).is_dir():
                raise DatasetError(
                    f"{archive}: folder {name!r} collides with the file {target / name}; move that "
                    "file away and unpack again"
                )
            continue
        if str(Path(name)) in folders:
            raise DatasetError(
                f"{archive}: {name!r} is both a file and a folder in the archive; refusing to unpack it"
            )
        if (target / name).is_dir():
            raise DatasetError(
                f"{archive}: file {name!r} collides with the folder {target / name}; move that folder "
                "away and unpack again"
            )


def _created_paths(target: Path, names: Iterable[str]) -> list[Path]:
    """The paths that unpacking ``names`` would create (members and their parent folders that do
    not exist yet), outermost first."""
    created: dict[Path, None] = {}
    for name in names:
        path = target / name
        for candidate in [*reversed(path.relative_to(target).parents), Path(name)]:
            full = target / candidate
            if str(candidate) != "." and not full.exists() and not full.is_symlink():
                created.setdefault(full, None)
    return list(created)


def _remove_created(paths: list[Path]) -> None:
    """Undo a partial unpacking: remove what it created (innermost first)."""
    for path in reversed(paths):
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def unpack(archive: str | Path, target: str | Path, progress: bool = True) -> None:
    """Unpack a .zip/.tar/.tar.gz/.tgz archive into ``target``, refusing members that would land
    outside it, links that tarfile's ``data`` filter refuses, and names that collide with folders.
    A failed unpacking removes what it had extracted (files that were there before are kept)."""
    archive, target = Path(archive), Path(target)
    target_existed = target.exists()
    target.mkdir(parents=True, exist_ok=True)
    target = target.resolve()
    name = archive.name.lower()
    created: list[Path] = []
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as bundle:
                infos = bundle.infolist()
                for info in infos:
                    if os.path.isabs(info.filename) or not _inside(target, info.filename):
                        raise DatasetError(
                            f"unsafe path {info.filename!r} in {archive}; refusing to unpack it"
                        )
                _check_collisions(archive, [(i.filename.rstrip("/"), i.is_dir()) for i in infos], target)
                created = _created_paths(target, [i.filename for i in infos])
                for info in tqdm(infos, desc=f"unpack {archive.name}", unit="file", disable=not progress):
                    bundle.extract(info, target)
        elif name.endswith((".tar", ".tar.gz", ".tgz")):
            with tarfile.open(archive) as bundle:
                members = bundle.getmembers()
                _check_tar_members(archive, members, target)
                _check_collisions(
                    archive,
                    [(m.name, None if m.issym() or m.islnk() else m.isdir()) for m in members],
                    target,
                )
                created = _created_paths(target, [m.name for m in members])
                extract_kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                for member in tqdm(members, desc=f"unpack {archive.name}", unit="file", disable=not progress):
                    bundle.extract(member, target, **extract_kwargs)
        else:
            raise DatasetError(f"{archive}: not an archive this tool unpacks ({', '.join(ARCHIVE_SUFFIXES)})")
    except BaseException as error:
        _remove_created(created)
        if not target_existed and target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        if isinstance(error, getattr(tarfile, "FilterError", ())):
            raise DatasetError(
                f"{archive}: member refused by tarfile's data filter ({_one_line(error)}); the "
                "archive holds a link or file that would escape or alter the target; refusing to "
                "unpack it"
            ) from error
        if isinstance(error, (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error)):
            raise DatasetError(
                f"{archive} is corrupt ({_one_line(error)}); delete it and download again"
            ) from error
        if isinstance(error, OSError) and not isinstance(error, DatasetError):
            raise DatasetError(
                f"{archive}: cannot unpack into {target} ({error.strerror or error}); nothing was left behind"
            ) from error
        raise


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
    root.mkdir(parents=True, exist_ok=True)
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
    found = dataset_cls.find_folder(root)
    if found is None:
        raise DatasetError(
            f"{name}: downloaded and unpacked into {root}, but {dataset_cls.expected_marker(root)} "
            f"is still missing; the archive layout may have changed"
        )
    return found
