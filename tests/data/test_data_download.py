"""Downloads against a local HTTP server: resume, mirrors, checksums, network errors, safe
unpacking, and the `download` command end to end."""

from __future__ import annotations

import hashlib
import io
import logging
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest
from dataset_trees import build_cub_tree

from dmlbench.data.__main__ import main
from dmlbench.data.cub import CUB200
from dmlbench.data.download import RemoteFile, fetch, unpack
from dmlbench.errors import DatasetError

PAYLOAD = bytes(range(256)) * 40  # 10240 bytes


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def remote(server, path="/f.bin", md5sum=md5(PAYLOAD), **kwargs) -> RemoteFile:  # noqa: B008
    server.files.setdefault(path, PAYLOAD)
    return RemoteFile(filename="f.bin", urls=(server.url(path),), md5=md5sum, **kwargs)


def test_download_verifies_and_renames(fake_server, tmp_path):
    report = fetch(remote(fake_server), tmp_path, progress=False)
    assert report.path == tmp_path / "f.bin"
    assert report.path.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()


def test_partial_file_is_resumed_with_a_range_request(fake_server, tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:3000])
    fetch(remote(fake_server), tmp_path, progress=False)
    assert fake_server.requests == [("/f.bin", "bytes=3000-")]
    assert fake_server.bytes_sent == len(PAYLOAD) - 3000
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_server_ignoring_the_range_gives_the_whole_file(fake_server, tmp_path):
    fake_server.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(b"x" * 3000)  # would corrupt the file if appended to
    fetch(remote(fake_server), tmp_path, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_complete_part_file_gets_416_and_is_accepted(fake_server, tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)
    fetch(remote(fake_server), tmp_path, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_dropped_connection_keeps_the_part_file_and_a_rerun_resumes(fake_server, tmp_path):
    fake_server.cut_after["/f.bin"] = 4000
    with pytest.raises(DatasetError) as info:
        fetch(remote(fake_server), tmp_path, progress=False)
    assert "rerun to resume" in str(info.value)
    assert (tmp_path / "f.bin.part").read_bytes() == PAYLOAD[:4000]
    fetch(remote(fake_server), tmp_path, progress=False)
    assert fake_server.requests[-1] == ("/f.bin", "bytes=4000-")
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_is_an_error_and_leaves_nothing(fake_server, tmp_path):
    wrong = "0" * 32
    with pytest.raises(DatasetError) as info:
        fetch(remote(fake_server, md5sum=wrong), tmp_path, dataset="CUB200", progress=False)
    message = str(info.value)
    assert message.startswith("CUB200: could not download f.bin")
    assert f"md5 mismatch for f.bin: expected {wrong}, got {md5(PAYLOAD)}" in message
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_sha256_is_checked_too(fake_server, tmp_path):
    good = hashlib.sha256(PAYLOAD).hexdigest()
    fetch(remote(fake_server, md5sum=None, sha256=good), tmp_path, progress=False)
    (tmp_path / "f.bin").unlink()
    with pytest.raises(DatasetError, match="sha256 mismatch"):
        fetch(remote(fake_server, md5sum=None, sha256="f" * 64), tmp_path, progress=False)


def test_next_mirror_is_tried_after_a_404(fake_server, tmp_path):
    fake_server.files["/good"] = PAYLOAD
    spec = RemoteFile("f.bin", (fake_server.url("/missing"), fake_server.url("/good")), md5=md5(PAYLOAD))
    report = fetch(spec, tmp_path, progress=False)
    assert [(a.url, a.reason) for a in report.failed] == [(fake_server.url("/missing"), "HTTP 404 Not Found")]
    assert report.path.read_bytes() == PAYLOAD


def test_network_error_gives_a_clear_message(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/CUB_200_2011.tgz"
    spec = RemoteFile("CUB_200_2011.tgz", (url,), md5="0" * 32)
    with pytest.raises(DatasetError) as info:
        fetch(spec, tmp_path, dataset="CUB200", progress=False, timeout=5)
    message = str(info.value)
    assert message.startswith(f"CUB200: could not download CUB_200_2011.tgz: {url} (network error:")
    assert "check the network connection" in message
    assert "\n" not in message


def test_missing_checksum_warns_and_downloads(fake_server, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="dmlbench.data.download"):
        fetch(remote(fake_server, md5sum=None), tmp_path, progress=False)
    assert "no published checksum for f.bin" in caplog.text
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_existing_corrupt_final_file_is_replaced(fake_server, tmp_path):
    (tmp_path / "f.bin").write_bytes(b"stale")
    fetch(remote(fake_server), tmp_path, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


# ---- unpacking -------------------------------------------------------------------------------


def _tar_with(path: Path, members: list[tarfile.TarInfo], data: bytes = b"hi") -> None:
    with tarfile.open(path, "w:gz") as bundle:
        for member in members:
            if member.isfile():
                member.size = len(data)
                bundle.addfile(member, io.BytesIO(data))
            else:
                bundle.addfile(member)


def test_tar_member_escaping_the_target_is_refused(tmp_path):
    archive = tmp_path / "evil.tgz"
    _tar_with(archive, [tarfile.TarInfo("ok/a.txt"), tarfile.TarInfo("../escaped.txt")])
    with pytest.raises(DatasetError, match="unsafe path '../escaped.txt'"):
        unpack(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "escaped.txt").exists()


def test_tar_symlink_pointing_outside_is_refused(tmp_path):
    link = tarfile.TarInfo("data/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
    archive = tmp_path / "link.tgz"
    _tar_with(archive, [link])
    with pytest.raises(DatasetError, match="points outside"):
        unpack(archive, tmp_path / "out", progress=False)


def test_zip_member_escaping_the_target_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../../escaped.txt", "x")
    with pytest.raises(DatasetError, match="unsafe path"):
        unpack(archive, tmp_path / "out", progress=False)


def test_good_archives_unpack(tmp_path):
    archive = tmp_path / "good.tgz"
    _tar_with(archive, [tarfile.TarInfo("top/inner/a.txt")], data=b"content")
    unpack(archive, tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "top" / "inner" / "a.txt").read_bytes() == b"content"
    zipped = tmp_path / "good.zip"
    with zipfile.ZipFile(zipped, "w") as bundle:
        bundle.writestr("z/b.txt", "zip content")
    unpack(zipped, tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "z" / "b.txt").read_text() == "zip content"


def test_corrupt_archive_is_a_dataset_error(tmp_path):
    archive = tmp_path / "broken.tgz"
    archive.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DatasetError, match="is corrupt"):
        unpack(archive, tmp_path / "out", progress=False)


# ---- the command ------------------------------------------------------------------------------


def _cub_archive(tmp_path: Path) -> bytes:
    source = tmp_path / "source"
    build_cub_tree(source)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        bundle.add(source / "CUB_200_2011", arcname="CUB_200_2011")
    return buffer.getvalue()


def test_download_command_fetches_unpacks_and_the_dataset_loads(fake_server, tmp_path, monkeypatch, capsys):
    archive = _cub_archive(tmp_path)
    fake_server.files["/records/CUB_200_2011.tgz"] = archive
    spec = RemoteFile("CUB_200_2011.tgz", (fake_server.url("/records/CUB_200_2011.tgz"),), md5=md5(archive))
    monkeypatch.setattr(CUB200, "remote_files", (spec,))
    root = tmp_path / "data"

    assert main(["download", "CUB200", "--root", str(root), "--no-progress"]) == 0
    assert f"CUB200: ready at {root / 'CUB_200_2011'}" in capsys.readouterr().out
    assert not (root / "CUB_200_2011.tgz").exists()  # archive removed after unpacking
    assert len(CUB200(root)) == 9

    requests_before = len(fake_server.requests)
    assert main(["download", "CUB200", "--root", str(root), "--no-progress"]) == 0
    assert len(fake_server.requests) == requests_before  # already present: no network


def test_constructor_download_flag_fetches_when_missing(fake_server, tmp_path, monkeypatch):
    archive = _cub_archive(tmp_path)
    fake_server.files["/c.tgz"] = archive
    spec = RemoteFile("CUB_200_2011.tgz", (fake_server.url("/c.tgz"),), md5=md5(archive))
    monkeypatch.setattr(CUB200, "remote_files", (spec,))
    monkeypatch.setattr("dmlbench.data.download.tqdm", _silent_tqdm())
    assert len(CUB200(tmp_path / "data", download=True)) == 9


def _silent_tqdm():
    from functools import partial

    from tqdm import tqdm

    return partial(tqdm, disable=True)


def test_download_command_network_failure_exits_1(tmp_path, monkeypatch, capsys):
    spec = RemoteFile("CUB_200_2011.tgz", ("http://127.0.0.1:9/CUB_200_2011.tgz",), md5="0" * 32)
    monkeypatch.setattr(CUB200, "remote_files", (spec,))
    assert main(["download", "CUB200", "--root", str(tmp_path), "--no-progress"]) == 1
    assert "error: CUB200: could not download CUB_200_2011.tgz" in capsys.readouterr().err


def test_manual_download_is_explained(tmp_path, capsys):
    assert main(["download", "InShop", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "img.zip" in err and f"{tmp_path}/InShop/Eval/list_eval_partition.txt" in err


def test_optional_file_failure_only_warns(fake_server, tmp_path, monkeypatch, caplog):
    archive = _cub_archive(tmp_path)
    fake_server.files["/c.tgz"] = archive
    specs = (
        RemoteFile("CUB_200_2011.tgz", (fake_server.url("/c.tgz"),), md5=md5(archive)),
        RemoteFile("extra.txt", (fake_server.url("/absent.txt"),), optional=True),
    )
    monkeypatch.setattr(CUB200, "remote_files", specs)
    with caplog.at_level(logging.WARNING):
        assert main(["download", "CUB200", "--root", str(tmp_path / "d"), "--no-progress"]) == 0
    assert "optional file, continuing without it" in caplog.text


def test_download_of_unknown_name_is_a_usage_error(tmp_path, capsys):
    assert main(["download", "CUB201", "--root", str(tmp_path)]) == 2
    assert "nearest: CUB200" in capsys.readouterr().err


def test_failed_download_leaves_no_empty_folder(tmp_path, monkeypatch):
    spec = RemoteFile("CUB_200_2011.tgz", ("http://127.0.0.1:9/CUB_200_2011.tgz",), md5="0" * 32)
    monkeypatch.setattr(CUB200, "remote_files", (spec,))
    assert main(["download", "CUB200", "--root", str(tmp_path / "new" / "data"), "--no-progress"]) == 1
    assert list(tmp_path.iterdir()) == []  # neither data/ nor new/ is left
    (tmp_path / "kept").mkdir()
    assert main(["download", "CUB200", "--root", str(tmp_path / "kept"), "--no-progress"]) == 1
    assert (tmp_path / "kept").is_dir()  # a folder that was there stays
