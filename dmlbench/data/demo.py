"""DemoShapes: a small procedurally generated image data set for the CPU demo and the tests.

Each class is a combination of a shape, a fill pattern and a colour palette (e.g. "star with
stripes in sunset colours"); each image shows one object of its class at a random position,
scale and rotation, with a random pattern phase, period and orientation, jittered colours, a
cluttered background and pixel noise. Class ids are assigned so that the lower and the upper
half of the sorted labels (MLRC trains on the first half, tests on the second) each contain
every shape, pattern and palette: the test classes are new combinations of familiar parts, so
a model trained on one half generalises to the other. Colour alone does not identify a class
(every palette is shared by many classes of each half).

The images are written once as PNG files under ``<root>/dmlbench_demo_shapes_<hash>/`` (the
hash covers the generator version and the parameters) with ``labels.csv``; generation goes into
a temporary folder that is renamed into place, so a killed or concurrent generation never
leaves a half-written data set. Same parameters -> byte-identical files.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from dmlbench.data.base import RetrievalDataset
from dmlbench.errors import DatasetError
from dmlbench.fileio import umask_mode
from dmlbench.integrity import process_alive
from dmlbench.registry import register

#: Bump when the rendering changes, so that old generated folders are not reused.
GENERATOR_VERSION = 1

SHAPES = ("disk", "triangle", "square", "star", "cross", "ring", "crescent", "arrow")
PATTERNS = ("stripes", "dots", "checker", "solid")
#: palette name -> (pattern colour, base colour), RGB
PALETTES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "sunset": ((220, 60, 40), (250, 200, 60)),
    "ocean": ((30, 70, 200), (120, 220, 230)),
    "forest": ((30, 120, 50), (200, 230, 120)),
    "berry": ((120, 30, 140), (240, 130, 190)),
}
PALETTE_NAMES = tuple(PALETTES)

LABELS_FILE = "labels.csv"
SUPERSAMPLE = 2


def class_attributes(num_classes: int) -> list[tuple[int, int, int]]:
    """(shape, pattern, palette) indices of each class id.

    The ids below ``num_classes // 2`` and those above are filled separately, each greedily with
    the unused combination whose attribute values are least used so far in that half (ties:
    a fixed pseudo-random order), so that each half covers every attribute value as evenly as
    its size allows.
    """
    combos = [
        (s, p, c) for s in range(len(SHAPES)) for p in range(len(PATTERNS)) for c in range(len(PALETTES))
    ]
    if not 1 <= num_classes <= len(combos):
        raise ValueError(f"DemoShapes: num_classes={num_classes} must be between 1 and {len(combos)}")
    order = np.random.default_rng(12345).permutation(len(combos))
    unused = [combos[i] for i in order]
    assigned: list[tuple[int, int, int]] = []
    half = num_classes // 2
    for size in (half, num_classes - half):
        counts = [np.zeros(n, dtype=int) for n in (len(SHAPES), len(PATTERNS), len(PALETTES))]
        for _ in range(size):

            def load(combo: tuple[int, int, int]) -> tuple[int, int]:
                used = [counts[a][v] for a, v in enumerate(combo)]  # noqa: B023 - used at once
                return max(used), sum(used)

            best = min(unused, key=load)
            unused.remove(best)
            for attribute, value in enumerate(best):
                counts[attribute][value] += 1
            assigned.append(best)
    return assigned


def class_description(attributes: tuple[int, int, int]) -> str:
    shape, pattern, palette = attributes
    return f"{SHAPES[shape]} {PATTERNS[pattern]} {PALETTE_NAMES[palette]}"


# ---------------------------------------------------------------------------------- rendering


def _regular_polygon(sides: int, radius: float, phase: float = 0.0) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(sides) / sides
    return np.stack([np.cos(angles), np.sin(angles)], 1) * radius


def _star(points: int, outer: float, inner: float) -> np.ndarray:
    angles = -np.pi / 2 + np.pi * np.arange(2 * points) / points
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], 1)


def shape_layers(shape: str) -> list[tuple[np.ndarray, int]]:
    """The shape as polygons in unit coordinates (radius about 1), each with the mask value it
    paints (255 adds, 0 cuts out), drawn in order."""
    if shape == "disk":
        return [(_regular_polygon(48, 0.95), 255)]
    if shape == "triangle":
        return [(_regular_polygon(3, 1.1, -np.pi / 2), 255)]
    if shape == "square":
        return [(_regular_polygon(4, 1.05, np.pi / 4), 255)]
    if shape == "star":
        return [(_star(5, 1.15, 0.5), 255)]
    if shape == "cross":
        a, b = 1.0, 0.36
        horizontal = np.array([[-a, -b], [a, -b], [a, b], [-a, b]])
        return [(horizontal, 255), (horizontal[:, ::-1].copy(), 255)]
    if shape == "ring":
        return [(_regular_polygon(48, 1.0), 255), (_regular_polygon(48, 0.55), 0)]
    if shape == "crescent":
        return [(_regular_polygon(48, 1.0), 255), (_regular_polygon(48, 0.85) + np.array([0.5, 0.0]), 0)]
    if shape == "arrow":
        outline = [
            [-1.0, -0.3],
            [0.15, -0.3],
            [0.15, -0.75],
            [1.05, 0.0],
            [0.15, 0.75],
            [0.15, 0.3],
            [-1.0, 0.3],
        ]
        return [(np.array(outline), 255)]
    raise ValueError(f"unknown shape {shape!r}")


def pattern_field(pattern: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """1 where the pattern colour shows, 0 where the base colour does; ``u, v`` are coordinates in
    units of the pattern period."""
    if pattern == "stripes":
        return (np.mod(u, 1.0) < 0.5).astype(np.float32)
    if pattern == "dots":
        du, dv = np.mod(u, 1.0) - 0.5, np.mod(v, 1.0) - 0.5
        return (du * du + dv * dv < 0.3**2).astype(np.float32)
    if pattern == "checker":
        return (np.mod(np.floor(u) + np.floor(v), 2) == 0).astype(np.float32)
    if pattern == "solid":
        return np.ones_like(u, dtype=np.float32)
    raise ValueError(f"unknown pattern {pattern!r}")


def _jitter_colour(rng: np.random.Generator, colour: tuple[int, int, int]) -> np.ndarray:
    brightness = np.float32(rng.uniform(0.8, 1.15))
    shift = rng.normal(0, 14, 3).astype(np.float32)
    return np.clip(np.asarray(colour, np.float32) * brightness + shift, 0, 255)


@functools.lru_cache(maxsize=8)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) pixel-centre coordinates of a ``size`` x ``size`` image, float32."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A random colour gradient with a few random lines and blobs."""
    ys, xs = _pixel_grid(size)
    start, end = rng.uniform(30, 225, 3).astype(np.float32), rng.uniform(30, 225, 3).astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = ((np.cos(direction) * (xs - size / 2) + np.sin(direction) * (ys - size / 2)) / size + 0.5)[
        ..., None
    ]
    background = Image.fromarray(np.clip(start + (end - start) * ramp, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(background)
    for _ in range(int(rng.integers(3, 7))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0, x1, y1 = (float(c) for c in rng.uniform(0, size, 4))
        if rng.random() < 0.5:
            draw.line(
                [(x0, y0), (x1, y1)], fill=colour, width=max(1, round(int(rng.integers(1, 4)) * size / 64))
            )
        else:
            radius = rng.uniform(0.03, 0.08) * size
            draw.ellipse([x0 - radius, y0 - radius, x0 + radius, y0 + radius], fill=colour)
    return background


def _shape_mask(shape: str, centre: np.ndarray, radius: float, angle: float, size: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of the rotated, scaled shape (drawn at SUPERSAMPLE x)."""
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mask = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(mask)
    for polygon, value in shape_layers(shape):
        points = (polygon @ rotation.T * radius + centre) * SUPERSAMPLE
        draw.polygon([(float(x), float(y)) for x, y in points], fill=value)
    return np.asarray(mask.reduce(SUPERSAMPLE), np.float32)[..., None] / 255.0


def render_image(rng: np.random.Generator, attributes: tuple[int, int, int], image_size: int) -> Image.Image:
    """One image of the class with these (shape, pattern, palette) indices."""
    shape, pattern, palette = attributes
    size = image_size
    background = np.asarray(_background(rng, size), np.float32)

    radius = rng.uniform(0.22, 0.36) * size
    centre = rng.uniform(0.85 * radius, size - 0.85 * radius, 2)
    alpha = _shape_mask(SHAPES[shape], centre, radius, rng.uniform(0, 2 * np.pi), size)

    ys, xs = _pixel_grid(size)
    period = radius * rng.uniform(0.35, 0.55)
    theta = rng.uniform(0, np.pi)
    dx, dy = xs - np.float32(centre[0]), ys - np.float32(centre[1])
    cos, sin, scale = np.float32(np.cos(theta)), np.float32(np.sin(theta)), np.float32(1 / period)
    phase_u, phase_v = (np.float32(phase) for phase in rng.uniform(0, 1, 2))
    u = (dx * cos + dy * sin) * scale + phase_u
    v = (dy * cos - dx * sin) * scale + phase_v
    field = pattern_field(PATTERNS[pattern], u, v)[..., None]
    pattern_colour, base_colour = (_jitter_colour(rng, c) for c in PALETTES[PALETTE_NAMES[palette]])
    fill = field * pattern_colour + (1 - field) * base_colour

    pixels = background * (1 - alpha) + fill * alpha
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(rng.uniform(3, 10))
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------------- generation


def generation_parameters(
    num_classes: int, images_per_class: int, image_size: int, seed: int
) -> dict[str, int]:
    return {
        "generator_version": GENERATOR_VERSION,
        "num_classes": num_classes,
        "images_per_class": images_per_class,
        "image_size": image_size,
        "seed": seed,
    }


def folder_name(parameters: dict[str, int]) -> str:
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:12]
    return f"dmlbench_demo_shapes_{digest}"


def image_path(label: int, index: int) -> str:
    return f"images/{label:03d}/{index:04d}.png"


def write_data_set(folder: Path, parameters: dict[str, int]) -> None:
    """Render every image into ``folder`` (which exists and is empty) and write ``labels.csv``."""
    attributes = class_attributes(parameters["num_classes"])
    rows = []
    for label, attrs in enumerate(attributes):
        (folder / image_path(label, 0)).parent.mkdir(parents=True)
        for index in range(parameters["images_per_class"]):
            rng = np.random.default_rng([parameters["seed"], label, index])
            save_png(render_image(rng, attrs, parameters["image_size"]), folder / image_path(label, index))
            rows.append(
                [image_path(label, index), label, *(name for name in class_description(attrs).split())]
            )
    with open(folder / LABELS_FILE, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "label", "shape", "pattern", "palette"])
        writer.writerows(rows)
    with open(folder / "parameters.json", "w") as file:
        json.dump(parameters, file, indent=1, sort_keys=True)


def save_png(image: Image.Image, path: Path) -> None:
    image.save(path, format="PNG", compress_level=1)


def _temporary_prefix(name: str) -> str:
    """``.<name>.tmp-<host>-<pid>-``: the owner of a temp folder, so that only this host's dead
    generations are cleaned (a shared file system may hold other hosts' live ones)."""
    return f".{name}.tmp-{socket.gethostname()}-{os.getpid()}-"


def _remove_stale_temporaries(root: Path, name: str) -> None:
    """Delete temp folders left by generations on this host whose process no longer runs."""
    pattern = re.compile(re.escape(f".{name}.tmp-{socket.gethostname()}-") + r"(\d+)-[^-]*$")
    for candidate in root.glob(f".{name}.tmp-*"):
        match = pattern.match(candidate.name)
        if match and int(match.group(1)) != os.getpid() and not process_alive(int(match.group(1))):
            shutil.rmtree(candidate, ignore_errors=True)


def ensure_generated(root: str | Path, parameters: dict[str, int]) -> Path:
    """The data set folder for ``parameters`` under ``root``, generating it first if needed.

    Generation writes into a temp folder beside it and renames that into place (atomic); if
    another process got there first, its (identical) folder is kept and ours is discarded.
    """
    root = Path(root)
    folder = root / folder_name(parameters)
    if folder.is_dir():
        return folder
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"DemoShapes: cannot create the data set root {root} ({error})") from error
    _remove_stale_temporaries(root, folder.name)
    temporary = Path(tempfile.mkdtemp(dir=root, prefix=_temporary_prefix(folder.name)))
    try:
        write_data_set(temporary, parameters)
        temporary.chmod(umask_mode(0o777))  # mkdtemp makes it private; the user's umask decides
        try:
            os.replace(temporary, folder)
        except OSError:
            if not folder.is_dir():  # not a lost race: a real failure
                raise
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return folder


@register("dataset")
class DemoShapes(RetrievalDataset):
    """Procedural shapes, patterns and palettes; generated under ``root`` on first use.

    ``labels`` are 0..num_classes-1; ``super_labels`` the shape index; ``official_split`` is
    "train" for the lower half of the labels and "test" for the upper half (as in CUB/Cars).
    """

    def __init__(
        self,
        root: str | Path,
        transform: Callable[[Image.Image], Any] | None = None,
        num_classes: int = 48,
        images_per_class: int = 32,
        image_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__(transform)
        checks = (
            ("num_classes", num_classes, 1),
            ("images_per_class", images_per_class, 1),
            ("image_size", image_size, 16),
            ("seed", seed, 0),
        )
        for name, value, minimum in checks:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"DemoShapes: {name}={value!r} must be an integer >= {minimum}")
        class_attributes(num_classes)  # validates num_classes against the number of combinations
        parameters = generation_parameters(num_classes, images_per_class, image_size, seed)
        self.folder = ensure_generated(root, parameters)
        self._read(parameters)

    def _read(self, parameters: dict[str, int]) -> None:
        labels_file = self.folder / LABELS_FILE
        try:
            with open(labels_file, newline="") as file:
                rows = list(csv.DictReader(file))
        except FileNotFoundError as error:
            raise DatasetError(
                f"DemoShapes: {labels_file} is missing; delete {self.folder} to regenerate it"
            ) from error
        expected = parameters["num_classes"] * parameters["images_per_class"]
        if len(rows) != expected:
            raise DatasetError(
                f"DemoShapes: {labels_file} lists {len(rows)} images, expected {expected}; delete {self.folder} "
                "to regenerate it"
            )
        labels = [int(row["label"]) for row in rows]
        half = parameters["num_classes"] // 2
        self._set_samples(
            paths=[self.folder / row["path"] for row in rows],
            labels=labels,
            super_labels=[SHAPES.index(row["shape"]) for row in rows],
            official_split=["train" if label < half else "test" for label in labels],
        )
        self.class_names = {
            int(row["label"]): f"{row['shape']} {row['pattern']} {row['palette']}" for row in rows
        }
