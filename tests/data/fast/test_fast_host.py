"""The Pillow pipeline: tasks, seeding, worker processes against threads, and the batches against
torchvision applied with the same parameters."""

from __future__ import annotations

import gc
import multiprocessing

import numpy as np
import pytest
import torch
from fast_images import FileDataset, random_sizes, write_images
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as F

from dmlbench.data.fast import PillowBatchLoader
from dmlbench.data.fast.host import TaskList, split_batch, task_seed
from dmlbench.data.fast.plan import AugmentationPlan, HorizontalFlipStep, ResizeStep
from dmlbench.errors import DatasetError

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TRAIN = T.Compose(
    [
        T.Resize(56),
        T.RandomResizedCrop(48, scale=(0.16, 1)),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ]
)
EVAL = T.Compose([T.Resize(56), T.CenterCrop(48), T.ToTensor(), T.Normalize(MEAN, STD)])


@pytest.fixture(scope="module")
def jpeg_paths(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("jpegs"), random_sizes(13, 50, 110, seed=5))


@pytest.mark.parametrize("count, per_task", [(10, 4), (128, 16), (7, 7), (5, 16), (1, 3)])
def test_a_batch_splits_into_consecutive_even_tasks(count, per_task):
    indices = list(range(100, 100 + count))
    parts = split_batch(indices, per_task)
    assert [i for part in parts for i in part] == indices
    assert len(parts) == -(-count // per_task)  # ceil: as few tasks as the limit allows
    sizes = [len(part) for part in parts]
    assert max(sizes) <= per_task and max(sizes) - min(sizes) <= 1


def test_task_seeds_depend_on_epoch_batch_and_part_only():
    assert task_seed(7, 3, 1) == task_seed(7, 3, 1)
    seeds = {task_seed(e, b, p) for e in (0, 1) for b in range(20) for p in range(8)}
    assert len(seeds) == 2 * 20 * 8
    assert all(0 <= s < 2**63 for s in seeds)
    tasks = list(TaskList([[4, 5, 6], [1, 2]], images_per_task=2, epoch_seed=9))
    assert [(t.batch, t.part, t.parts, t.indices) for t in tasks] == [
        (0, 0, 2, (4, 5)),
        (0, 1, 2, (6,)),
        (1, 0, 1, (1, 2)),
    ]
    assert tasks[2].seed == task_seed(9, 1, 0)


def _expected_batch(dataset, indices, seed, plan):
    """The task's images through torchvision's functional ops, with the parameters a generator
    seeded like the task draws, then ToTensor + Normalize."""
    images = [dataset.load_image(i) for i in indices]
    params = plan.sample(
        [im.height for im in images], [im.width for im in images], torch.Generator().manual_seed(seed)
    )
    out = []
    for index, image in enumerate(images):
        for step, p in zip(plan.steps, params):
            if isinstance(step, HorizontalFlipStep):
                image = F.hflip(image) if p.flip[index] else image
            elif isinstance(step, ResizeStep):
                image = F.resize(image, [int(p.rows.out[index]), int(p.cols.out[index])])
            else:
                image = F.resized_crop(
                    image,
                    int(p.rows.offset[index]),
                    int(p.cols.offset[index]),
                    int(p.rows.length[index]),
                    int(p.cols.length[index]),
                    [int(p.rows.out[index]), int(p.cols.out[index])],
                )
        out.append(F.normalize(F.to_tensor(image), MEAN, STD))
    return torch.stack(out)


def test_train_batches_are_torchvisions_pixels_for_each_tasks_parameters(jpeg_paths):
    dataset = FileDataset(jpeg_paths, [i % 3 for i in range(len(jpeg_paths))], TRAIN)
    sampler = [12, 0, 5, 7, 3, 9, 1, 11, 2, 4]
    loader = PillowBatchLoader(
        dataset,
        batch_size=5,
        sampler=sampler,
        device="cpu",
        seed=21,
        decode_workers=0,
        images_per_task=2,
        resize_within_crop=False,
    )
    batches = list(loader)
    plan = AugmentationPlan.from_transform(TRAIN)
    start = 0
    for task in TaskList([sampler[:5], sampler[5:]], images_per_task=2, epoch_seed=21):
        images, labels = batches[task.batch]
        start = 0 if task.part == 0 else start
        got = images[start : start + len(task.indices)]
        assert (got - _expected_batch(dataset, task.indices, task.seed, plan)).abs().max() < 1e-5
        assert labels[start : start + len(task.indices)].tolist() == [dataset.labels[i] for i in task.indices]
        start += len(task.indices)


def test_worker_processes_give_the_same_batches_as_threads(jpeg_paths):
    dataset = FileDataset(jpeg_paths, list(range(len(jpeg_paths))), TRAIN)
    options = {"batch_size": 4, "device": "cpu", "seed": 2, "images_per_task": 3, "drop_last": True}
    threads = list(PillowBatchLoader(dataset, decode_workers=0, num_threads=3, **options))
    processes = list(PillowBatchLoader(dataset, decode_workers=2, **options))
    assert len(threads) == len(processes) == 3
    for (a, la), (b, lb) in zip(threads, processes):
        assert torch.equal(a, b) and torch.equal(la, lb)


def test_eval_batches_from_worker_processes_equal_the_pil_dataloader(jpeg_paths):
    dataset = FileDataset(jpeg_paths, list(range(len(jpeg_paths))), EVAL)
    reference = list(torch.utils.data.DataLoader(dataset, batch_size=6))
    fast = list(
        PillowBatchLoader(dataset, batch_size=6, device="cpu", decode_workers=2, resize_within_crop=False)
    )
    assert len(fast) == len(reference) == 3
    for (ref_images, ref_labels), (images, labels) in zip(reference, fast):
        assert torch.equal(labels, ref_labels)
        assert (images - ref_images).abs().max() < 1e-5


def test_resize_within_crop_moves_almost_no_pixel(jpeg_paths):
    dataset = FileDataset(jpeg_paths, list(range(len(jpeg_paths))), TRAIN)
    options = {"batch_size": 13, "device": "cpu", "seed": 4, "decode_workers": 0}
    ((exact, _),) = PillowBatchLoader(dataset, resize_within_crop=False, **options)
    ((within, _),) = PillowBatchLoader(dataset, resize_within_crop=True, **options)
    levels = ((exact - within) * torch.tensor(STD).view(1, 3, 1, 1) * 255).abs().round()
    # the same filter at the same positions; Pillow's single-precision box and (in newer versions)
    # its choice of pass order move values near a rounding boundary by a level or two. A wrong
    # crop or scale would move them by tens of levels.
    assert levels.max() <= 2
    assert levels.mean() < 0.5


def test_a_missing_file_in_a_worker_process_is_a_dataset_error(jpeg_paths, tmp_path):
    dataset = FileDataset(jpeg_paths[:3] + [str(tmp_path / "absent.jpg")], [0, 0, 0, 0], EVAL)
    with pytest.raises(DatasetError, match="absent.jpg"):
        list(PillowBatchLoader(dataset, batch_size=2, device="cpu", decode_workers=2))


def test_worker_processes_end_with_an_abandoned_epoch(jpeg_paths):
    dataset = FileDataset(jpeg_paths, [0] * len(jpeg_paths), TRAIN)
    before = set(multiprocessing.active_children())
    iterator = iter(PillowBatchLoader(dataset, batch_size=2, device="cpu", decode_workers=2, prefetch=1))
    next(iterator)
    assert len(set(multiprocessing.active_children()) - before) == 2
    thread = iterator.pipeline.threads[0]
    del iterator
    gc.collect()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert not set(multiprocessing.active_children()) - before


def test_pillow_images_keep_their_mode_conversion(tmp_path):
    # a CMYK JPEG goes through Pillow's convert("RGB") like the reference path's
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (70, 64), (10, 200, 30, 5)).save(path)
    dataset = FileDataset([str(path)], [0], EVAL)
    ((reference, _),) = torch.utils.data.DataLoader(dataset, batch_size=1)
    ((images, _),) = PillowBatchLoader(dataset, batch_size=1, device="cpu", decode_workers=0)
    assert (images - reference).abs().max() < 1e-5
    assert np.isfinite(images.numpy()).all()


@pytest.mark.parametrize("channels_last", [True, False])
def test_normaliser_equals_totensor_then_normalize(channels_last):
    from dmlbench.data.fast.host import Normaliser
    from dmlbench.data.transforms import ToBGR255

    pixels = torch.randint(0, 256, (2, 5, 4, 3), dtype=torch.uint8)  # [B, h, w, 3] as Pillow gives them
    plan = AugmentationPlan.from_transform(T.Compose([T.CenterCrop(4), T.ToTensor(), T.Normalize(MEAN, STD)]))
    got = Normaliser(plan.color, torch.device("cpu"), torch.float32, channels_last)(pixels)
    expected = torch.stack([F.normalize(F.to_tensor(Image.fromarray(p.numpy())), MEAN, STD) for p in pixels])
    assert got.shape == (2, 3, 5, 4) and (got - expected).abs().max() < 1e-5
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert got.is_contiguous(memory_format=layout)
    bgr = AugmentationPlan.from_transform(
        T.Compose([T.CenterCrop(4), T.ToTensor(), ToBGR255(), T.Normalize([104, 117, 128], [1, 1, 1])])
    )
    got = Normaliser(bgr.color, torch.device("cpu"), torch.float32, channels_last)(pixels)
    expected = pixels.permute(0, 3, 1, 2)[:, [2, 1, 0]].float() - torch.tensor([104.0, 117.0, 128.0]).view(
        1, 3, 1, 1
    )
    assert (got - expected).abs().max() < 1e-4
