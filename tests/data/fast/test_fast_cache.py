"""The pre-resized image cache: sizes, order, exact copies, staleness and atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from fast_images import CroppingDataset, FileDataset, write_images
from PIL import Image
from torchvision import transforms as T

from dmlbench.data.fast import PillowBatchLoader, pre_resized


@pytest.fixture
def dataset(tmp_path):
    sizes = [(90, 120), (120, 80), (40, 60), (100, 100), (45, 200)]
    return FileDataset(write_images(tmp_path / "src", sizes), [3, 1, 4, 1, 5])


def test_copies_have_the_requested_short_side_and_keep_order_and_labels(dataset, tmp_path):
    cached = pre_resized(dataset, 50, tmp_path / "cache")
    assert np.array_equal(cached.labels, dataset.labels) and len(cached) == len(dataset)
    for source, copy in zip(dataset.paths, cached.paths):
        with Image.open(source) as original, Image.open(copy) as small:
            expected = T.Resize(50)(original).size if min(original.size) > 50 else original.size
            assert small.size == expected
    # a copy already at the short side is left alone by the transform that starts the pipeline
    assert T.Resize(50)(cached.load_image(0)).size == cached.load_image(0).size


def test_small_jpegs_are_copied_byte_for_byte(dataset, tmp_path):
    cached = pre_resized(dataset, 50, tmp_path / "cache")
    assert Path(cached.paths[2]).read_bytes() == Path(dataset.paths[2]).read_bytes()  # 40x60 source


def test_copies_are_the_resized_images_up_to_jpeg_loss(dataset, tmp_path):
    cached = pre_resized(dataset, 50, tmp_path / "cache", quality=98)
    for index in (0, 1, 3):
        expected = np.asarray(T.Resize(50)(dataset.load_image(index)), dtype=np.int16)
        got = np.asarray(cached.load_image(index), dtype=np.int16)
        assert np.abs(got - expected).mean() < 3.0
    lossless = pre_resized(dataset, 50, tmp_path / "cache", lossless=True)
    expected = np.asarray(T.Resize(50)(dataset.load_image(0)))
    assert np.array_equal(np.asarray(lossless.load_image(0)), expected)


def test_second_build_reuses_copies_and_a_changed_source_gets_a_new_one(dataset, tmp_path):
    first = pre_resized(dataset, 50, tmp_path / "cache")
    stamps = [os.stat(p).st_mtime_ns for p in first.paths]
    again = pre_resized(dataset, 50, tmp_path / "cache")
    assert again.paths == first.paths
    assert [os.stat(p).st_mtime_ns for p in again.paths] == stamps
    Image.new("RGB", (300, 200), (200, 10, 10)).save(dataset.paths[0])
    changed = pre_resized(dataset, 50, tmp_path / "cache")
    assert changed.paths[0] != first.paths[0] and changed.paths[1:] == first.paths[1:]
    assert Image.open(changed.paths[0]).size == (75, 50)


def test_an_interrupted_write_leaves_no_file_under_the_final_name(dataset, tmp_path, monkeypatch):
    original_save = Image.Image.save

    def failing_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as handle:
            handle.write(b"\xff\xd8\xff partial")  # half-written file, then the process "dies"
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        pre_resized(dataset, 50, tmp_path / "cache", num_threads=1)
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    # only byte-for-byte copies (which do not use Image.save) may exist, and they are complete
    small_jpegs = {
        Path(dataset.paths[i]).read_bytes() for i in (2, 4)
    }  # 40x60 and 45x200: copied as they are
    for path in leftovers:
        assert not path.name.startswith(".")
        assert path.read_bytes() in small_jpegs
    monkeypatch.setattr(Image.Image, "save", original_save)
    cached = pre_resized(dataset, 50, tmp_path / "cache")
    for path in cached.paths:
        with Image.open(path) as image:
            image.load()  # every copy is a complete image


def test_datasets_that_edit_images_are_cached_as_edited(tmp_path):
    paths = write_images(tmp_path / "src", [(80, 120)])
    dataset = CroppingDataset(paths, [0])
    cached = pre_resized(dataset, 200, tmp_path / "cache", lossless=True)
    assert np.array_equal(np.asarray(cached.load_image(0)), np.asarray(dataset.load_image(0)))


@pytest.mark.parametrize(
    "options",
    [{"decode_workers": 0, "resize_within_crop": False}],
    ids=["cpu"],
)
def test_the_fast_loader_reads_the_cache(dataset, tmp_path, options):
    transform = T.Compose([T.Resize(50), T.CenterCrop(40), T.ToTensor()])
    cached = pre_resized(dataset, 50, tmp_path / "cache", lossless=True)
    cached.transform = transform
    dataset.transform = transform
    ((reference, _),) = torch.utils.data.DataLoader(dataset, batch_size=5)
    ((images, labels),) = PillowBatchLoader(cached, batch_size=5, device="cpu", **options)
    assert labels.tolist() == [3, 1, 4, 1, 5]
    assert (images - reference).abs().max() < 1e-6


def test_copy_names_key_on_the_resolved_source_path(dataset, tmp_path):
    """A copy's name is sha1(resolved path|size|mtime_ns) of its source however the path is
    written -- relative, through a linked folder, a linked file, or with '..' -- so a cache built
    by earlier versions (which resolved each path whole) is found again."""
    import hashlib

    source = Path(dataset.paths[0])
    (tmp_path / "linked_folder").symlink_to(source.parent)
    (tmp_path / "linked_file.jpg").symlink_to(source)
    (tmp_path / "sub").mkdir()
    spellings = [
        str(source),
        os.path.relpath(source),
        str(tmp_path / "linked_folder" / source.name),
        str(tmp_path / "linked_file.jpg"),
        str(tmp_path / "sub" / ".." / "linked_folder" / source.name),
    ]
    stat = source.stat()
    expected = hashlib.sha1(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    cached = pre_resized(FileDataset(spellings, [0] * len(spellings)), 50, tmp_path / "cache")
    assert {Path(p).stem for p in cached.paths} == {expected}


def test_a_warm_cache_is_checked_without_writing(dataset, tmp_path, monkeypatch):
    from dmlbench.data.fast import cache

    pre_resized(dataset, 50, tmp_path / "cache")
    calls = []
    monkeypatch.setattr(cache, "_make_copy", lambda *args: calls.append(args))
    again = pre_resized(dataset, 50, tmp_path / "cache")
    assert calls == [] and all(Path(p).is_file() for p in again.paths)
    Path(again.paths[3]).unlink()
    pre_resized(dataset, 50, tmp_path / "cache")
    assert [args[1] for args in calls] == [3]  # only the missing copy is made
