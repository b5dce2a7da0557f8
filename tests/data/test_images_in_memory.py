"""images_in_memory: the images served from memory are, pixel for pixel, the files on disk
(read here with Pillow directly); transforms see them the same way; a data set that would not
fit is refused early with the fix; the key is a boolean; nothing is decoded before the run's
checks are done."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from dmlbench.config.value_checks import validate_values
from dmlbench.data import memory
from dmlbench.data.base import TransformedSubset
from dmlbench.data.demo import DemoShapes
from dmlbench.data.memory import InMemoryDataset
from dmlbench.errors import ConfigError


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return DemoShapes(str(tmp_path_factory.mktemp("demo")), num_classes=4, images_per_class=3, image_size=24)


def test_pixels_labels_and_order_are_the_files(shapes):
    cached = InMemoryDataset(shapes, show_progress=False)
    assert cached.images is None  # nothing decoded until the experiment asks (after its checks)
    assert len(cached) == len(shapes) == 12
    assert cached.labels.tolist() == shapes.labels.tolist() and cached.paths == shapes.paths
    for index, path in enumerate(shapes.paths):
        with Image.open(path) as image:
            expected = np.asarray(image.convert("RGB"))
        image = cached.load_image(index)
        assert image.mode == "RGB" and np.array_equal(np.asarray(image), expected)
    assert cached.nbytes == 12 * 24 * 24 * 3


def test_random_transforms_draw_the_same_crops_from_memory(shapes):
    cached = InMemoryDataset(shapes, show_progress=False)
    transform = T.Compose([T.RandomResizedCrop(16, scale=(0.5, 1)), T.RandomHorizontalFlip(), T.ToTensor()])
    outputs = []
    for dataset in (shapes, cached):
        torch.manual_seed(0)
        subset = TransformedSubset(dataset, [0, 5, 11], transform)
        outputs.append(torch.stack([subset[i][0] for i in range(3)]))
    assert torch.equal(outputs[0], outputs[1])


def test_too_large_for_the_machine_is_refused_early(shapes, monkeypatch):
    monkeypatch.setattr(
        memory, "physical_memory_bytes", lambda: 2 * 12 * 24 * 24 * 3 - 1
    )  # half is one byte short
    with pytest.raises(
        ConfigError,
        match=r"images_in_memory: the 12 decoded images would take about .* "
        r"set images_in_memory: false",
    ):
        InMemoryDataset(shapes, show_progress=False).load()


def test_the_key_is_a_boolean():
    with pytest.raises(ConfigError, match="images_in_memory"):
        validate_values({"images_in_memory": "yes"})


class CountingSource:
    """Wraps a data set and counts the images it decodes."""

    def __init__(self, dataset) -> None:
        self.dataset, self.decoded = dataset, 0

    def __call__(self, index):
        self.decoded += 1
        return self.dataset.__class__.load_image(self.dataset, index)


def test_a_second_trial_reuses_the_decoded_images_until_a_file_changes(tmp_path, monkeypatch):
    shapes = DemoShapes(str(tmp_path), num_classes=4, images_per_class=3, image_size=24)
    counter = CountingSource(shapes)
    monkeypatch.setattr(shapes, "load_image", counter)
    first = InMemoryDataset(shapes, show_progress=False).load()
    assert counter.decoded == 12
    second = InMemoryDataset(shapes, show_progress=False).load()  # the next trial of a search
    assert counter.decoded == 12
    assert all(np.array_equal(a, b) for a, b in zip(first.images, second.images))
    # a rewritten file (new size) is decoded again, with its new pixels
    Image.new("RGB", (24, 24), (255, 0, 0)).save(shapes.paths[5], format="PNG", compress_level=0)
    third = InMemoryDataset(shapes, show_progress=False).load()
    assert counter.decoded == 24
    assert np.asarray(third.load_image(5))[0, 0].tolist() == [255, 0, 0]
