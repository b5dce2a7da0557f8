"""Safe unpacking of data set archives (.zip, .tar, .tar.gz, .tgz): no member may escape the
target folder (no absolute paths, no ``..``, no links pointing outside, nothing tarfile's ``data``
filter refuses, no file over a folder); a failed unpacking removes what it extracted."""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dmlbench.errors import DatasetError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


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
                extract_kwargs: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
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
