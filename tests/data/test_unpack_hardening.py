"""Crafted archives: links refused by tarfile's data filter, partial extraction removed, names
colliding with folders, corrupt archives -- each one clear error, nothing half-unpacked."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from dmlbench.data.download import unpack
from dmlbench.errors import DatasetError


def make_tar(path: Path, members: list[tuple[str, str, str]]) -> Path:
    """members: (name, kind, payload) with kind file | dir | symlink (payload = link target)."""
    with tarfile.open(path, "w") as bundle:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
                bundle.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                bundle.addfile(info)
            else:
                info.type, info.linkname = tarfile.SYMTYPE, payload
                bundle.addfile(info)
    return path


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.skipif(not hasattr(tarfile, "data_filter"), reason="tarfile has no data filter")
def test_a_link_chain_refused_by_the_data_filter_is_reported_as_such_and_nothing_stays(tmp_path) -> None:
    # d/s -> .. is inside (it is the target); d/s/s2 -> .. then resolves to the target's parent:
    # only visible once d/s exists on disk, which is what tarfile's data filter checks.
    archive = make_tar(
        tmp_path / "a.tar",
        [("d", "dir", ""), ("d/f.txt", "file", "x"), ("d/s", "symlink", ".."), ("d/s/s2", "symlink", "..")],
    )
    target = tmp_path / "out"
    with pytest.raises(DatasetError) as caught:
        unpack(archive, target, progress=False)
    message = str(caught.value)
    assert "data filter" in message and "corrupt" not in message and "\n" not in message
    assert not target.exists()  # the partial extraction (d, d/f.txt, d/s) is gone


def test_an_absolute_symlink_is_refused_as_a_link_not_as_corruption(tmp_path) -> None:
    archive = make_tar(tmp_path / "a.tar", [("ok.txt", "file", "x"), ("evil", "symlink", "/etc/passwd")])
    with pytest.raises(DatasetError, match=r"link 'evil' -> '/etc/passwd' .* points outside"):
        unpack(archive, tmp_path / "out", progress=False)
    assert tree(tmp_path / "out") == []


def test_partial_extraction_is_removed_but_files_already_there_are_kept(tmp_path, monkeypatch) -> None:
    target = tmp_path / "out"
    (target / "keep").mkdir(parents=True)
    (target / "keep" / "old.txt").write_text("mine")
    archive = make_tar(
        tmp_path / "a.tar",
        [("keep/new.txt", "file", "1"), ("new/a.txt", "file", "2"), ("new/b.txt", "file", "3")],
    )
    real_extract = tarfile.TarFile.extract
    calls = []

    def failing_extract(self, member, *args, **kwargs):
        calls.append(member.name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_extract(self, member, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", failing_extract)
    with pytest.raises(DatasetError, match="cannot unpack into .*No space left on device"):
        unpack(archive, target, progress=False)
    assert tree(target) == ["keep", "keep/old.txt"]


def test_a_file_over_an_existing_folder_is_a_clear_error(tmp_path) -> None:
    target = tmp_path / "out"
    (target / "images").mkdir(parents=True)
    archive = make_tar(tmp_path / "a.tar", [("a.txt", "file", "x"), ("images", "file", "not a folder")])
    with pytest.raises(
        DatasetError, match=r"file 'images' collides with the folder .*images; move that folder"
    ):
        unpack(archive, target, progress=False)
    assert tree(target) == ["images"]


def test_a_name_that_is_both_file_and_folder_in_the_archive(tmp_path) -> None:
    buffer = tmp_path / "a.zip"
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("x", "file")
        bundle.writestr("x/y.txt", "inside a folder named like the file")
    with pytest.raises(DatasetError, match="'x' is both a file and a folder in the archive"):
        unpack(buffer, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_truncated_archive_is_corrupt_and_leaves_nothing(tmp_path) -> None:
    good = make_tar(tmp_path / "g.tar", [(f"f{i}.txt", "file", "y" * 5000) for i in range(4)])
    data = good.read_bytes()
    bad = tmp_path / "b.tar"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="is corrupt .*download again"):
        unpack(bad, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_good_archive_still_unpacks_with_the_umask(tmp_path) -> None:
    archive = make_tar(tmp_path / "a.tar", [("d", "dir", ""), ("d/f.txt", "file", "x")])
    unpack(archive, tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "d" / "f.txt").read_text() == "x"
    assert os.path.islink(tmp_path / "out" / "d") is False
