"""PillowBatchLoader against the reference PIL + torchvision DataLoader (Pillow in threads here;
test_fast_host.py runs worker processes)."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
import torch
from fast_images import CroppingDataset, FileDataset, random_sizes, write_images
from torchvision import transforms as T

from dmlbench.data.base import TransformedSubset
from dmlbench.data.fast import PillowBatchLoader, fast_loader_available
from dmlbench.data.transforms import ToBGR255
from dmlbench.errors import ConfigError, DatasetError

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
ONE_LEVEL = 1.0 / 255.0 / min(STD)  # one 8-bit level after Normalize, in the most stretched channel
# threads (no worker processes: fast tests; test_fast_host.py runs processes)
PATHS = {"cpu": {"decode_workers": 0}}
EXACT_CPU = {"decode_workers": 0, "resize_within_crop": False}


def eval_transform(size: int = 48) -> T.Compose:
    return T.Compose([T.Resize(56), T.CenterCrop(size), T.ToTensor(), T.Normalize(MEAN, STD)])


def train_transform(size: int = 48) -> T.Compose:
    return T.Compose(
        [
            T.Resize(56),
            T.RandomResizedCrop(size, scale=(0.16, 1)),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )


@pytest.fixture(scope="module")
def jpeg_paths(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("jpegs"), random_sizes(14, 50, 110))


@pytest.mark.parametrize("options", [EXACT_CPU], ids=["cpu"])
def test_eval_path_matches_the_pil_dataloader(jpeg_paths, options):
    dataset = FileDataset(jpeg_paths, [i % 4 for i in range(len(jpeg_paths))], eval_transform())
    reference = list(torch.utils.data.DataLoader(dataset, batch_size=4))
    fast = list(PillowBatchLoader(dataset, batch_size=4, device="cpu", **options))
    assert len(fast) == len(reference) == 4
    for (ref_images, ref_labels), (images, labels) in zip(reference, fast):
        assert images.shape == ref_images.shape and images.dtype == torch.float32
        assert labels.dtype == torch.int64 and torch.equal(labels, ref_labels)
        # the same Pillow operations: the same pixels, up to float rounding in the normalisation
        assert (images - ref_images).abs().max() < 1e-5


@pytest.mark.parametrize("options", [EXACT_CPU], ids=["cpu"])
def test_bninception_convention_matches_the_pil_dataloader(jpeg_paths, options):
    transform = T.Compose(
        [T.Resize(56), T.CenterCrop(48), T.ToTensor(), ToBGR255(), T.Normalize([104, 117, 128], [1, 1, 1])]
    )
    dataset = FileDataset(jpeg_paths[:5], list(range(5)), transform)
    ((ref_images, _),) = torch.utils.data.DataLoader(dataset, batch_size=5)
    ((images, _),) = PillowBatchLoader(dataset, batch_size=5, device="cpu", **options)
    assert (images - ref_images).abs().max() < 1e-4


@pytest.mark.parametrize("options", PATHS.values(), ids=PATHS.keys())
def test_train_path_follows_the_sampler_order_and_labels(jpeg_paths, options):
    labels = [i % 5 for i in range(len(jpeg_paths))]
    subset = TransformedSubset(
        FileDataset(jpeg_paths, labels),
        np.arange(2, 14),
        train_transform(),
        label_map={i: 10 + i for i in range(5)},
    )
    sampler = torch.utils.data.SubsetRandomSampler(range(12), generator=torch.Generator().manual_seed(7))
    order = list(sampler)  # the same permutation as the next pass, because the generator is re-seeded below
    sampler.generator.manual_seed(7)
    reference = torch.utils.data.DataLoader(subset, batch_size=5, sampler=sampler, drop_last=True)
    ref_labels = [batch_labels for _, batch_labels in reference]
    sampler.generator.manual_seed(7)
    fast = PillowBatchLoader(
        subset, batch_size=5, sampler=sampler, drop_last=True, device="cpu", channels_last=True, **options
    )
    assert len(fast) == 2
    batches = list(fast)
    assert [b[1].tolist() for b in batches] == [r.tolist() for r in ref_labels]
    assert batches[0][1].tolist() == [10 + labels[2 + i] for i in order[:5]]
    for images, _ in batches:
        assert images.shape == (5, 3, 48, 48) and images.is_contiguous(memory_format=torch.channels_last)
        pixels = images * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
        levels = pixels * 255
        assert torch.allclose(levels, levels.round(), atol=1e-3)  # whole 8-bit levels, like ToTensor's


@pytest.mark.parametrize("options", PATHS.values(), ids=PATHS.keys())
def test_augmentation_is_seeded_per_epoch(jpeg_paths, options):
    dataset = FileDataset(jpeg_paths[:6], list(range(6)), train_transform())
    first = [b[0] for b in PillowBatchLoader(dataset, batch_size=3, device="cpu", seed=5, **options)]
    again = [b[0] for b in PillowBatchLoader(dataset, batch_size=3, device="cpu", seed=5, **options)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    loader = PillowBatchLoader(
        dataset, batch_size=3, device="cpu", generator=torch.Generator().manual_seed(1), **options
    )
    epoch_one, epoch_two = [b[0] for b in loader], [b[0] for b in loader]
    assert not torch.equal(epoch_one[0], epoch_two[0])


@pytest.mark.parametrize("options", [EXACT_CPU], ids=["cpu"])
def test_datasets_that_edit_images_in_load_image_are_read_through_it(jpeg_paths, options):
    dataset = CroppingDataset(jpeg_paths[:4], [0, 1, 2, 3], eval_transform(32))
    ((ref_images, _),) = torch.utils.data.DataLoader(dataset, batch_size=4)
    ((images, _),) = PillowBatchLoader(dataset, batch_size=4, device="cpu", **options)
    assert (images - ref_images).abs().max() < 1e-5


@pytest.mark.parametrize("options", [EXACT_CPU], ids=["cpu"])
def test_png_and_grayscale_files(tmp_path, options):
    paths = write_images(tmp_path / "png", [(70, 90)], fmt="PNG") + write_images(
        tmp_path / "gray", [(80, 60)], mode="L"
    )
    dataset = FileDataset(paths, [0, 1], eval_transform())
    ((ref_images, _),) = torch.utils.data.DataLoader(dataset, batch_size=2)
    ((images, _),) = PillowBatchLoader(dataset, batch_size=2, device="cpu", **options)
    assert (images - ref_images).abs().max() < 1e-5


@pytest.mark.parametrize("options", PATHS.values(), ids=PATHS.keys())
def test_a_missing_file_raises_a_dataset_error_naming_it(jpeg_paths, tmp_path, options):
    missing = str(tmp_path / "gone.jpg")
    dataset = FileDataset(jpeg_paths[:3] + [missing], [0, 0, 0, 0], eval_transform())
    with pytest.raises(DatasetError, match="gone.jpg"):
        list(PillowBatchLoader(dataset, batch_size=2, device="cpu", **options))


@pytest.mark.parametrize("options", PATHS.values(), ids=PATHS.keys())
def test_stopping_early_ends_the_background_threads(jpeg_paths, options):
    dataset = FileDataset(jpeg_paths, [0] * len(jpeg_paths), eval_transform())
    iterator = iter(PillowBatchLoader(dataset, batch_size=2, device="cpu", prefetch=1, **options))
    next(iterator)
    threads = list(iterator.pipeline.threads)
    iterator.close()
    assert threads and not any(t.is_alive() for t in threads)
    assert not any(t in threads for t in threading.enumerate())


@pytest.mark.parametrize("options", PATHS.values(), ids=PATHS.keys())
def test_dropping_an_unfinished_iterator_ends_its_threads(jpeg_paths, options):
    dataset = FileDataset(jpeg_paths, [0] * len(jpeg_paths), eval_transform())
    iterator = iter(PillowBatchLoader(dataset, batch_size=2, device="cpu", prefetch=1, **options))
    next(iterator)
    threads = list(iterator.pipeline.threads)
    del iterator  # as a training loop does when it stops before the end of the sampler
    gc.collect()
    for thread in threads:
        thread.join(timeout=5)
    assert not any(t.is_alive() for t in threads)


def test_fast_loader_available_explains_unsupported_transforms(jpeg_paths):
    dataset = FileDataset(
        jpeg_paths[:2], [0, 1], T.Compose([T.Resize(56), T.ColorJitter(0.2), T.CenterCrop(8), T.ToTensor()])
    )
    assert "ColorJitter" in fast_loader_available(dataset)
    assert fast_loader_available(FileDataset(jpeg_paths[:2], [0, 1], eval_transform())) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("workers", [0, 2])
def test_cpu_decoding_delivers_the_same_batches_on_cuda(jpeg_paths, workers):
    dataset = FileDataset(jpeg_paths, list(range(len(jpeg_paths))), train_transform())
    options = {"decode_workers": workers, "seed": 3}
    on_cpu = list(PillowBatchLoader(dataset, batch_size=5, device="cpu", **options))
    on_cuda = list(PillowBatchLoader(dataset, batch_size=5, device="cuda", channels_last=True, **options))
    assert len(on_cpu) == len(on_cuda) == 3
    for (cpu_images, cpu_labels), (images, labels) in zip(on_cpu, on_cuda):
        assert images.is_cuda and images.is_contiguous(memory_format=torch.channels_last)
        assert labels.is_pinned() and torch.equal(labels, cpu_labels)
        # the same uint8 pixels from the same Pillow work; only the normalisation ran elsewhere
        assert (images.cpu() - cpu_images).abs().max() < 1e-5


def test_the_switch_interval_is_set_while_epochs_run_and_restored_after(jpeg_paths):
    import sys

    dataset = FileDataset(jpeg_paths[:6], [0] * 6, eval_transform())
    before = sys.getswitchinterval()
    loader = PillowBatchLoader(dataset, batch_size=2, device="cpu", decode_workers=0, switch_interval=0.0004)
    first = iter(loader)
    assert sys.getswitchinterval() == pytest.approx(0.0004)
    second = iter(loader)  # overlapping epochs: the value stays until the last one ends
    list(first)
    assert sys.getswitchinterval() == pytest.approx(0.0004)
    next(second)
    second.close()
    assert sys.getswitchinterval() == pytest.approx(before)
    dropped = iter(loader)
    assert sys.getswitchinterval() == pytest.approx(0.0004)
    del dropped
    gc.collect()
    assert sys.getswitchinterval() == pytest.approx(before)
    list(PillowBatchLoader(dataset, batch_size=2, device="cpu", decode_workers=0, switch_interval=None))
    assert sys.getswitchinterval() == pytest.approx(before)
    with pytest.raises(ConfigError, match="switch_interval"):
        PillowBatchLoader(dataset, batch_size=2, device="cpu", switch_interval=0)
