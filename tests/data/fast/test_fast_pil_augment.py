"""An AugmentationPlan's parameters carried out with Pillow (the fast path's CPU side), against
torchvision's own transforms and functional ops on the same PIL images."""

from __future__ import annotations

import numpy as np
import torch
from fast_images import smooth_image
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as F

from dmlbench.data.fast.pil_augment import apply_steps, image_steps
from dmlbench.data.fast.plan import AugmentationPlan, HorizontalFlipStep, ResizeStep

TRAIN = T.Compose(
    [T.Resize(100), T.RandomResizedCrop(80, scale=(0.16, 1)), T.RandomHorizontalFlip(), T.ToTensor()]
)
EVAL = T.Compose([T.Resize(100), T.CenterCrop(80), T.ToTensor()])


def _images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [smooth_image(rng, h, w) for h, w in sizes]


def _draw(plan, images, seed=0):
    return plan.sample(
        [im.height for im in images], [im.width for im in images], torch.Generator().manual_seed(seed)
    )


def _torchvision_chain(image: Image.Image, plan: AugmentationPlan, params, index: int) -> np.ndarray:
    """The drawn parameters applied with torchvision's functional ops."""
    for step, p in zip(plan.steps, params):
        if isinstance(step, HorizontalFlipStep):
            image = F.hflip(image) if p.flip[index] else image
        elif isinstance(step, ResizeStep):
            image = F.resize(image, [int(p.rows.out[index]), int(p.cols.out[index])])
        else:
            top, left = int(p.rows.offset[index]), int(p.cols.offset[index])
            height, width = int(p.rows.length[index]), int(p.cols.length[index])
            image = F.resized_crop(
                image, top, left, height, width, [int(p.rows.out[index]), int(p.cols.out[index])]
            )
    return np.asarray(image)


def test_exact_steps_are_torchvisions_pixels_for_the_same_parameters():
    sizes = [(150, 200), (200, 130), (170, 170), (120, 210), (100, 140), (260, 90)]
    images = _images(sizes)
    plan = AugmentationPlan.from_transform(TRAIN)
    params = _draw(plan, images)
    assert params[2].flip.any() and not params[2].flip.all()  # both branches exercised with this seed
    for index, image in enumerate(images):
        got = np.asarray(apply_steps(image, image_steps(params, index)))
        assert got.shape == (80, 80, 3)
        assert np.array_equal(got, _torchvision_chain(image, plan, params, index))


def test_exact_eval_steps_equal_the_torchvision_transform_itself():
    images = _images([(150, 200), (90, 70), (101, 333)])
    transform = T.Compose([T.Resize(100), T.CenterCrop(80)])
    plan = AugmentationPlan.from_transform(EVAL)
    params = _draw(plan, images)
    for index, image in enumerate(images):
        got = np.asarray(apply_steps(image, image_steps(params, index)))
        assert np.array_equal(got, np.asarray(transform(image)))


def test_a_centre_crop_larger_than_the_image_pads_with_zeros_like_torchvision():
    images = _images([(30, 50), (61, 20), (40, 40)])
    plan = AugmentationPlan.from_transform(T.Compose([T.CenterCrop((45, 44)), T.ToTensor()]))
    params = _draw(plan, images)
    for index, image in enumerate(images):
        for within_crop in (False, True):
            got = np.asarray(apply_steps(image, image_steps(params, index), resize_within_crop=within_crop))
            assert np.array_equal(got, np.asarray(T.CenterCrop((45, 44))(image)))


def test_resize_within_a_centre_crop_is_the_same_filter():
    images = _images([(150, 200), (200, 130), (333, 101)])
    plan = AugmentationPlan.from_transform(EVAL)
    params = _draw(plan, images)
    for index, image in enumerate(images):
        exact = np.asarray(apply_steps(image, image_steps(params, index))).astype(int)
        within = np.asarray(apply_steps(image, image_steps(params, index), resize_within_crop=True)).astype(
            int
        )
        # one Pillow resize read on the crop's box: the same filter, up to Pillow's rounding
        assert np.abs(exact - within).max() <= 2
        assert np.abs(exact - within).mean() < 0.5


def test_resize_within_a_random_resized_crop_moves_values_by_at_most_two_levels():
    sizes = [(150, 200), (200, 130), (170, 170), (120, 210), (300, 225), (225, 300)]
    images = _images(sizes, seed=3)
    plan = AugmentationPlan.from_transform(TRAIN)
    params = _draw(plan, images, seed=4)
    differences = []
    for index, image in enumerate(images):
        expected = _torchvision_chain(image, plan, params, index).astype(int)
        within = np.asarray(apply_steps(image, image_steps(params, index), resize_within_crop=True))
        assert within.shape == expected.shape
        differences.append(np.abs(expected - within.astype(int)).ravel())
    difference = np.concatenate(differences)
    assert difference.max() <= 2
    assert difference.mean() < 0.5


def test_resize_within_crop_is_exact_when_the_resize_is_the_identity():
    # images already at the Resize's short side (as in the pre-resized cache): nothing to fuse
    images = _images([(100, 140), (133, 100), (100, 100)])
    plan = AugmentationPlan.from_transform(TRAIN)
    params = _draw(plan, images, seed=2)
    for index, image in enumerate(images):
        within = np.asarray(apply_steps(image, image_steps(params, index), resize_within_crop=True))
        assert np.array_equal(within, _torchvision_chain(image, plan, params, index))
