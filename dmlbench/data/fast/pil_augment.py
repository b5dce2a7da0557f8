"""An :class:`~dmlbench.data.fast.plan.AugmentationPlan`'s geometric steps applied to PIL images.

This is the CPU side of the fast path: the plan's parameters, drawn for a
group of images, are carried out with the Pillow operations torchvision itself calls for a PIL
image, so the pixels are the reference path's (for the same parameters):

- a resampling step ``(offset, length, out)`` per axis: ``crop`` of the interval when it is not the
  whole image (Pillow fills the part outside the image with zeros, as ``CenterCrop`` pads), then a
  bilinear ``resize`` to ``out`` when that differs from ``length`` (``Resize``; and
  ``RandomResizedCrop``, which is ``F.resized_crop``: crop, then resize);
- a flip: ``transpose(FLIP_LEFT_RIGHT)``.

``resize_within_crop=True`` (the loader's default) computes a whole-image resize followed by a
crop (``Resize(256)`` then ``RandomResizedCrop``/``CenterCrop``/``RandomCrop``) only inside the
crop: Pillow's ``resize(box=...)`` with the crop's box times the resize's scale factor evaluates
the same filter at the same positions (Pillow limits the filter at the image's edges, not the
box's), and the crop's own resize follows as before. On CUB-sized images that halves the CPU
time of the augmentation. It is not bit for bit: Pillow takes the box in single precision (its
weights move by about 1e-7), and newer Pillow versions choose the order of the horizontal and
vertical passes by cost, which for a box can differ from the whole-image resize's order (each
pass rounds to 8 bits). Values move by at most 2 levels of 255; how many move depends on the
Pillow version (about 0.1% on CUB-sized images with Pillow 11-12's fixed order, up to a quarter
by one level with Pillow 13 where the order flips).
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from dmlbench.data.fast.plan import StepParams


def image_steps(params: Sequence[StepParams], index: int) -> list[tuple[str, tuple]]:
    """Image ``index``'s part of a group's parameters: ``("flip", (flag,))`` or
    ``("resample", (top, height, out_h, left, width, out_w))`` per step."""
    steps: list[tuple[str, tuple]] = []
    for p in params:
        if p.flip is not None:
            steps.append(("flip", (bool(p.flip[index]),)))
        else:
            rows, cols = p.rows, p.cols
            assert rows is not None and cols is not None  # a step without a flip maps both axes
            steps.append(
                (
                    "resample",
                    (
                        int(rows.offset[index]),
                        int(rows.length[index]),
                        int(rows.out[index]),
                        int(cols.offset[index]),
                        int(cols.length[index]),
                        int(cols.out[index]),
                    ),
                )
            )
    return steps


def resample_exactly(image: Image.Image, step: tuple) -> Image.Image:
    """One resampling step as torchvision does it on a PIL image: crop, then bilinear resize."""
    top, height, out_h, left, width, out_w = step
    if (top, left, height, width) != (0, 0, image.height, image.width):
        image = image.crop((left, top, left + width, top + height))
    if (out_h, out_w) != (height, width):
        image = image.resize((out_w, out_h), Image.Resampling.BILINEAR)
    return image


def _is_whole_image_resize(image: Image.Image, step: tuple) -> bool:
    top, height, _, left, width, _ = step
    return (top, left, height, width) == (0, 0, image.height, image.width)


def _inside(size: tuple[int, int], step: tuple) -> bool:
    """Whether ``step``'s crop lies inside an image of ``size`` = (height, width)."""
    top, height, _, left, width, _ = step
    return top >= 0 and left >= 0 and top + height <= size[0] and left + width <= size[1]


def resize_then_crop(image: Image.Image, resize: tuple, crop: tuple) -> Image.Image:
    """``resample_exactly(resample_exactly(image, resize), crop)``, computing only the resized
    pixels inside the crop: ``resize`` is a whole-image step and ``crop`` lies inside its output."""
    _, height, resized_h, _, width, resized_w = resize
    top, crop_h, out_h, left, crop_w, out_w = crop
    scale_y, scale_x = height / resized_h, width / resized_w  # Pillow's scale: input / output pixels
    box = (
        left * scale_x,
        top * scale_y,
        min((left + crop_w) * scale_x, float(width)),
        min((top + crop_h) * scale_y, float(height)),
    )
    image = image.resize((crop_w, crop_h), Image.Resampling.BILINEAR, box=box)
    if (out_h, out_w) != (crop_h, crop_w):
        image = image.resize((out_w, out_h), Image.Resampling.BILINEAR)
    return image


def apply_steps(
    image: Image.Image, steps: Sequence[tuple[str, tuple]], resize_within_crop: bool = False
) -> Image.Image:
    """Run one image's steps (from :func:`image_steps`); ``resize_within_crop``: a whole-image
    resize followed by a crop resizes only the part the crop keeps (:func:`resize_then_crop`)."""
    position = 0
    while position < len(steps):
        kind, values = steps[position]
        if kind == "flip":
            if values[0]:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            position += 1
            continue
        following = steps[position + 1] if position + 1 < len(steps) else None
        mergeable = (
            resize_within_crop
            and following is not None
            and following[0] == "resample"
            and _is_whole_image_resize(image, values)
            and (values[2], values[5]) != (values[1], values[4])  # the resize is not the identity
        )
        if mergeable and following is not None and _inside((values[2], values[5]), following[1]):
            image = resize_then_crop(image, values, following[1])
            position += 2
            continue
        image = resample_exactly(image, values)
        position += 1
    return image
