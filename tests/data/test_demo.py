"""DemoShapes: deterministic, atomic, real image files, class ids covering both halves."""

from __future__ import annotations

import csv
import multiprocessing
import os
import socket
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmlbench.data import demo
from dmlbench.data.demo import (
    DemoShapes,
    class_attributes,
    ensure_generated,
    folder_name,
    generation_parameters,
)
from dmlbench.errors import DatasetError

SMALL = {"num_classes": 6, "images_per_class": 3, "image_size": 32}


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path):
    first = DemoShapes(str(tmp_path / "a"), **SMALL, seed=3)
    second = DemoShapes(str(tmp_path / "b"), **SMALL, seed=3)
    other = DemoShapes(str(tmp_path / "c"), **SMALL, seed=4)
    first_files, second_files = file_bytes(first.folder), file_bytes(second.folder)
    assert len(first_files) == 6 * 3 + 2  # images + labels.csv + parameters.json
    assert first_files == second_files
    other_files = file_bytes(other.folder)
    changed = [
        name for name in first_files if name.endswith(".png") and first_files[name] != other_files[name]
    ]
    assert len(changed) == 18


def test_labels_counts_and_metadata(tmp_path):
    data = DemoShapes(str(tmp_path), **SMALL)
    assert len(data) == 18
    assert data.labels.tolist() == [label for label in range(6) for _ in range(3)]
    assert data.official_split.tolist() == ["train"] * 9 + ["test"] * 9
    assert data.folder.name.startswith("dmlbench_demo_shapes_") and data.folder.parent == tmp_path
    assert data.folder.stat().st_mode & 0o777 == 0o755  # readable by others, unlike a fresh mkdtemp
    with open(data.folder / "labels.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    for index, row in enumerate(rows):
        assert Path(data.paths[index]) == data.folder / row["path"]
        assert data.super_labels[index] == demo.SHAPES.index(row["shape"])
        assert data.class_names[int(row["label"])] == f"{row['shape']} {row['pattern']} {row['palette']}"
    image, label = data[4]
    assert label == 1 and image.size == (32, 32)


def test_images_are_real_decodable_png_files(tmp_path):
    data = DemoShapes(str(tmp_path), **SMALL)
    for path in data.paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode == "RGB" and image.size == (32, 32)
            image.verify()
        pixels = np.asarray(Image.open(path), dtype=np.float32)
        assert pixels.std() > 10  # a picture, not a flat colour
    transformed = DemoShapes(str(tmp_path), **SMALL, transform=lambda image: np.asarray(image).shape)
    assert transformed[0] == ((32, 32, 3), 0)


def test_both_label_halves_cover_every_attribute_value():
    cardinalities = (len(demo.SHAPES), len(demo.PATTERNS), len(demo.PALETTES))
    for num_classes in range(2, 129):
        attributes = class_attributes(num_classes)
        assert len(set(attributes)) == num_classes
        half = num_classes // 2
        for part in (attributes[:half], attributes[half:]):
            for position, cardinality in enumerate(cardinalities):
                counts = Counter(combo[position] for combo in part)
                assert len(counts) == min(len(part), cardinality), (num_classes, position)
                assert max(counts.values()) - min(counts.get(v, 0) for v in range(cardinality)) <= 2


def test_default_halves_are_exactly_balanced():
    attributes = class_attributes(48)
    for part in (attributes[:24], attributes[24:]):
        assert sorted(Counter(combo[0] for combo in part).values()) == [3] * 8
        assert sorted(Counter(combo[1] for combo in part).values()) == [6] * 4
        assert sorted(Counter(combo[2] for combo in part).values()) == [6] * 4


def test_second_use_reads_without_regenerating(tmp_path, monkeypatch):
    first = DemoShapes(str(tmp_path), **SMALL)
    before = file_bytes(first.folder)

    def fail(*args, **kwargs):
        raise AssertionError("regenerated")

    monkeypatch.setattr(demo, "render_image", fail)
    second = DemoShapes(str(tmp_path), **SMALL)
    assert second.paths == first.paths and file_bytes(second.folder) == before


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real_render = demo.render_image

    def crash_after_five(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("simulated crash")
        return real_render(*args, **kwargs)

    monkeypatch.setattr(demo, "render_image", crash_after_five)
    with pytest.raises(RuntimeError, match="simulated crash"):
        DemoShapes(str(tmp_path), **SMALL)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(demo, "render_image", real_render)
    assert len(DemoShapes(str(tmp_path), **SMALL)) == 18


def _killed_generation(root: str) -> None:
    """Child process: die abruptly (no cleanup) half-way through generation."""
    calls = []
    real_render = demo.render_image

    def die(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            os._exit(9)
        return real_render(*args, **kwargs)

    demo.render_image = die
    ensure_generated(root, generation_parameters(**SMALL, seed=0))


def _generate_slowly(root: str) -> None:
    real_render = demo.render_image

    def slow(*args, **kwargs):
        time.sleep(0.01)
        return real_render(*args, **kwargs)

    demo.render_image = slow
    ensure_generated(root, generation_parameters(**SMALL, seed=0))


def test_killed_generation_is_invisible_and_cleaned_up_later(tmp_path):
    process = multiprocessing.get_context("fork").Process(target=_killed_generation, args=(str(tmp_path),))
    process.start()
    process.join(60)
    assert process.exitcode == 9
    name = folder_name(generation_parameters(**SMALL, seed=0))
    leftovers = [path.name for path in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(
        f".{name}.tmp-{socket.gethostname()}-{process.pid}-"
    )
    data = DemoShapes(str(tmp_path), **SMALL)
    assert [path.name for path in tmp_path.iterdir()] == [name]
    reference = DemoShapes(str(tmp_path / "reference"), **SMALL)
    assert file_bytes(data.folder) == file_bytes(reference.folder)


def process_that_ended() -> int:
    process = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    process.start()
    process.join(60)
    return process.pid


def test_temporary_folders_of_running_or_foreign_processes_are_kept(tmp_path):
    name = folder_name(generation_parameters(**SMALL, seed=0))
    alive = tmp_path / f".{name}.tmp-{socket.gethostname()}-{os.getppid()}-abc"
    other_host = tmp_path / f".{name}.tmp-another-host-{process_that_ended()}-abc"
    alive.mkdir()
    other_host.mkdir()
    DemoShapes(str(tmp_path), **SMALL)
    assert alive.is_dir() and other_host.is_dir()


def test_concurrent_first_use_gives_one_complete_data_set(tmp_path):
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_generate_slowly, args=(str(tmp_path),)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [process.exitcode for process in processes] == [0, 0]
    name = folder_name(generation_parameters(**SMALL, seed=0))
    assert [path.name for path in tmp_path.iterdir()] == [name]
    reference = DemoShapes(str(tmp_path / "reference"), **SMALL)
    assert file_bytes(tmp_path / name) == file_bytes(reference.folder)


def test_losing_the_rename_race_keeps_the_winner(tmp_path, monkeypatch):
    parameters = generation_parameters(**SMALL, seed=0)
    real_write = demo.write_data_set
    winner = {}

    def write_then_lose(folder, params):
        real_write(folder, params)
        monkeypatch.setattr(demo, "write_data_set", real_write)
        winner["folder"] = ensure_generated(tmp_path, params)  # another "process" finishes first
        (winner["folder"] / "marker").write_text("winner")

    monkeypatch.setattr(demo, "write_data_set", write_then_lose)
    result = ensure_generated(tmp_path, parameters)
    assert result == winner["folder"] and (result / "marker").read_text() == "winner"
    assert [path.name for path in tmp_path.iterdir()] == [result.name]


def test_broken_folder_is_reported(tmp_path):
    data = DemoShapes(str(tmp_path), **SMALL)
    labels = data.folder / "labels.csv"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetError, match=r"lists 17 images, expected 18; delete .* to regenerate"):
        DemoShapes(str(tmp_path), **SMALL)
    labels.unlink()
    with pytest.raises(DatasetError, match=r"labels.csv is missing"):
        DemoShapes(str(tmp_path), **SMALL)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, "num_classes=0 must be an integer >= 1"),
        ({"num_classes": 129}, "num_classes=129 must be between 1 and 128"),
        ({"images_per_class": 0}, "images_per_class=0"),
        ({"image_size": 8}, "image_size=8 must be an integer >= 16"),
        ({"seed": -1}, "seed=-1"),
        ({"num_classes": 4.0}, "num_classes=4.0"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DemoShapes(str(tmp_path), **kwargs)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_registered_as_a_dataset():
    from dmlbench.registry import lookup

    assert lookup("dataset", "DemoShapes") is DemoShapes
