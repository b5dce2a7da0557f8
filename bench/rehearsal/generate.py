"""Write full-size synthetic CUB-200-2011, Cars196, SOP and In-Shop trees in their official layouts.

    python bench/rehearsal/generate.py OUT [--datasets cub cars sop inshop] [--image_size 48] [--workers 2]

Every file the loaders read is there, with the published image and class counts
(bench/rehearsal/layouts.py). The images are drawn by the demo's generator
(dmlbench.data.demo.render_image: a shape, a pattern and a palette per class, so the classes
are learnable) at ``image_size`` pixels and stretched to a random aspect ratio between 3:4 and
4:3, as JPEG. Each data set is built in ``OUT/<folder>.partial`` and renamed into place when
complete, so an interrupted run leaves no tree that looks finished; a finished tree is kept.
At 48 px the four take about 0.5 GB and ~10 minutes on one core.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for dmlbench

from bench.rehearsal import layouts
from dmlbench.data.demo import PALETTE_NAMES, PATTERNS, SHAPES, render_image

FOLDERS = {"cub": "CUB_200_2011", "cars": "cars196", "sop": "Stanford_Online_Products", "inshop": "InShop"}
COMBINATIONS = list(itertools.product(range(len(SHAPES)), range(len(PATTERNS)), range(len(PALETTE_NAMES))))


def draw(task: tuple[str, list[tuple[int, str, int]], int, int]) -> int:
    """Draw and save one chunk of images: ``(folder, [(index, path, label)], image size, seed)``."""
    folder, chunk, size, seed = task
    for index, path, label in chunk:
        rng = np.random.default_rng([seed, index])
        attributes = COMBINATIONS[(label * 7919) % len(COMBINATIONS)]
        image = render_image(rng, attributes, size)
        aspect = rng.uniform(0.75, 4 / 3)
        width, height = (size, round(size / aspect)) if aspect > 1 else (round(size * aspect), size)
        target = Path(folder) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        image.resize((width, height)).save(target, format="JPEG", quality=85)
    return len(chunk)


def plan(name: str) -> tuple[list[layouts.Image], list[str] | None]:
    if name == "inshop":
        return layouts.plan_inshop()
    return {"cub": layouts.plan_cub, "cars": layouts.plan_cars, "sop": layouts.plan_sop}[name](), None


def write_metadata(name: str, folder: Path, images: list[layouts.Image], statuses: list[str] | None) -> None:
    if name == "inshop":
        assert statuses is not None
        layouts.write_inshop(folder, images, statuses)
    else:
        {"cub": layouts.write_cub, "cars": layouts.write_cars, "sop": layouts.write_sop}[name](folder, images)


def generate(name: str, out: Path, image_size: int, workers: int, seed: int) -> Path:
    final = out / FOLDERS[name]
    if final.exists():
        print(f"{name}: {final} exists, kept")
        return final
    partial = out / (FOLDERS[name] + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    images, statuses = plan(name)
    rows = [(i, image.path, image.label) for i, image in enumerate(images)]
    chunks = [(str(partial), rows[i : i + 500], image_size, seed) for i in range(0, len(rows), 500)]
    start, done = time.perf_counter(), 0
    with multiprocessing.Pool(workers) as pool:
        for count in pool.imap_unordered(draw, chunks):
            done += count
            rate = done / (time.perf_counter() - start)
            print(f"\r{name}: {done}/{len(rows)} images, {rate:.0f}/s", end="", flush=True)
    write_metadata(name, partial, images, statuses)
    partial.rename(final)
    print(f"\n{name}: {len(images)} images, {len({i.label for i in images})} classes -> {final}")
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="the dataset_root to write into")
    parser.add_argument("--datasets", nargs="+", choices=list(FOLDERS), default=list(FOLDERS))
    parser.add_argument("--image_size", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in args.datasets:
        generate(name, args.out, args.image_size, args.workers, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
