"""Where data sets are looked for, including the folder names other repositories tell their users.

Default ``--dataset_root``: ``datasets`` (dmlbench's downloads), else ``data`` when only that
exists (powerful-benchmarker's default, used by the MLRC and SDM repositories: ``data/cub2011/
CUB_200_2011``, ``data/cars196/cars_annos.mat``; the official loaders accept those folder names).

The DAS and AVSL repositories use re-organised image-folder trees instead of the official files::

    cub200/images/<class>/<image>              (DAS; cars196/images/... likewise)
    cub200/train/<class>/..., cub200/test/...  (AVSL; cars196/train|test/... likewise)

Those trees have no annotation files, so the official loaders cannot read them; the generic
``ImageFolder`` loader can, and :func:`image_folder_hint` says exactly how to point at them.
"""

from __future__ import annotations

from pathlib import Path

#: Default --dataset_root candidates, in order of preference.
DEFAULT_ROOTS = ("datasets", "data")

#: Data set -> folder names of its image-folder trees (DAS, AVSL) under a data root.
IMAGE_FOLDER_TREES: dict[str, tuple[str, ...]] = {
    "CUB200": ("cub200", "CUB200", "cub"),
    "Cars196": ("cars196", "cars", "CARS196"),
}


def default_dataset_root(cwd: str | Path = ".") -> str:
    """``datasets`` if that folder exists (or neither does), else ``data`` if it exists."""
    for name in DEFAULT_ROOTS:
        if (Path(cwd) / name).is_dir():
            return name
    return DEFAULT_ROOTS[0]


def find_image_folder_tree(name: str, root: str | Path) -> tuple[str, bool] | None:
    """``(folder relative to root, has train/test split folders)`` of a DAS/AVSL tree of data set
    ``name`` under ``root``, or None."""
    root = Path(root).expanduser()
    for folder in IMAGE_FOLDER_TREES.get(name, ()):
        base = root / folder
        if (base / "train").is_dir() and (base / "test").is_dir():
            return folder, True
        if (base / "images").is_dir() and any(child.is_dir() for child in (base / "images").iterdir()):
            return f"{folder}/images", False
    return None


def image_folder_hint(name: str, root: str | Path) -> str | None:
    """How to read a DAS/AVSL tree of data set ``name`` found under ``root`` (None if there is none)."""
    found = find_image_folder_tree(name, root)
    if found is None:
        return None
    folder, split_folders = found
    split = (
        "its train/test folders are the official split (PredefinedSplitManager works)"
        if split_folders
        else "it has no official split (PredefinedSplitManager needs one; MLRCSplitManager does not)"
    )
    return (
        f"found the image-folder tree {Path(root).expanduser() / folder} (the layout of the DAS/AVSL "
        f"repositories), which has no {name} annotation files; read it with --dataset~OVERRIDE~ "
        f"'{{ImageFolder: {{folder: {folder}}}}}' --merge_argparse_when_resuming (labels: the class folders "
        f"in sorted order, which is the official class order when the folders are numbered like 001.Name; "
        f"{split}); check it with python -m dmlbench.data check ImageFolder --root {root} --option folder={folder}"
    )


def root_hint(root: str | Path) -> str:
    """The ``--dataset_root`` advice that fits: pass it when the default root was used, else
    nothing (the user already chose the folder); a file where a folder belongs is named as such."""
    root = Path(root).expanduser()
    if root.is_file():
        return f"; --dataset_root {root} is a file, give the folder that holds the data sets"
    if root == Path(default_dataset_root()):
        return f" or pass --dataset_root (the default, {root}, was used)"
    return ""
