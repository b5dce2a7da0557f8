"""The folder names other repositories tell their users: powerful-benchmarker's data/cub2011 and
data/cars196 (MLRC, SDM), the online_products tree (DAS, AVSL), and the re-organised image-folder
trees of DAS (cub200/images/<class>) and AVSL (cars196/train|test/<class>), which the official
loaders cannot read but whose error (and `python -m dmlbench.data check`) says how to read them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from dataset_trees import (
    CUB_IMAGES_PER_CLASS,
    SOP_TEST,
    SOP_TRAIN,
    build_cub_tree,
    write_image,
    write_sop_lists,
)

from dmlbench.cli import main as run_main
from dmlbench.data.__main__ import main as data_main
from dmlbench.data.cars import Cars196
from dmlbench.data.cub import CUB200
from dmlbench.data.image_folder import ImageFolder
from dmlbench.data.roots import default_dataset_root
from dmlbench.data.sop import StanfordOnlineProducts
from dmlbench.errors import DatasetError


def test_cub_in_powerful_benchmarkers_cub2011_folder(tmp_path: Path) -> None:
    build_cub_tree(tmp_path / "official")
    shutil.move(tmp_path / "official" / "CUB_200_2011", tmp_path / "data" / "cub2011" / "CUB_200_2011")
    dataset = CUB200(tmp_path / "data")
    expected = sorted(c for c, count in CUB_IMAGES_PER_CLASS.items() for _ in range(count))
    assert sorted(np.asarray(dataset.labels).tolist()) == expected
    assert dataset.folder == tmp_path / "data" / "cub2011" / "CUB_200_2011"


def test_sop_in_the_online_products_tree_with_images_folder(tmp_path: Path) -> None:
    folder = tmp_path / "online_products"
    write_sop_lists(folder, in_info_files=True)
    (folder / "images").mkdir()
    for name in ("bicycle_final", "chair_final", "toaster_final"):
        shutil.move(folder / name, folder / "images" / name)
    dataset = StanfordOnlineProducts(tmp_path)
    assert len(dataset) == len(SOP_TRAIN) + len(SOP_TEST)
    assert all(Path(path).is_file() and "/images/" in path for path in dataset.paths)


def das_cub_tree(root: Path) -> None:
    for cls, count in CUB_IMAGES_PER_CLASS.items():
        for k in range(count):
            write_image(root / "cub200" / "images" / f"{cls:03d}.Bird_{cls}" / f"Bird_{cls}_{k}.jpg")


def avsl_cars_tree(root: Path) -> dict[str, list[str]]:
    classes = {"train": ["001", "002"], "test": ["099", "100", "101"]}
    for split, names in classes.items():
        for name in names:
            for k in range(2):
                write_image(root / "cars196" / split / name / f"{k}.jpg")
    return classes


def test_the_das_cub_tree_is_named_in_the_error_and_reads_as_the_hint_says(tmp_path: Path) -> None:
    das_cub_tree(tmp_path)
    with pytest.raises(
        DatasetError, match=r"--dataset~OVERRIDE~ '\{ImageFolder: \{folder: cub200/images\}\}'"
    ):
        CUB200(tmp_path)
    dataset = ImageFolder(tmp_path, folder="cub200/images")  # what the hint says to use
    # class folders 001..150 in sorted order = the official class order (labels 0..4 for 1, 2, 100, 101, 150)
    official_order = sorted(CUB_IMAGES_PER_CLASS)
    expected = sorted(
        official_order.index(c) for c, count in CUB_IMAGES_PER_CLASS.items() for _ in range(count)
    )
    assert sorted(np.asarray(dataset.labels).tolist()) == expected
    assert dataset.official_split is None


def test_the_avsl_cars_tree_keeps_its_train_test_split(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    classes = avsl_cars_tree(tmp_path)
    assert data_main(["check", "Cars196", "--root", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "{ImageFolder: {folder: cars196}}" in err and "PredefinedSplitManager works" in err
    dataset = ImageFolder(tmp_path, folder="cars196")
    assert sorted(set(np.asarray(dataset.official_split).tolist())) == ["test", "train"]
    train = {
        dataset.class_names[label]
        for label, split in zip(dataset.labels, dataset.official_split)
        if split == "train"
    }
    assert train == set(classes["train"])
    with pytest.raises(DatasetError, match="cars_annos.mat not found"):
        Cars196(tmp_path / "elsewhere")  # no tree: the usual message


@pytest.mark.parametrize(
    "present, expected", [((), "datasets"), (("data",), "data"), (("data", "datasets"), "datasets")]
)
def test_default_dataset_root(tmp_path: Path, present: tuple[str, ...], expected: str) -> None:
    for name in present:
        (tmp_path / name).mkdir()
    assert default_dataset_root(tmp_path) == expected


def test_a_run_without_dataset_root_reads_data_when_only_that_exists(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    assert run_main(["--experiment_name", "x", "--device", "cpu"]) == 2
    assert "data/CUB_200_2011/images.txt not found" in capsys.readouterr().err


def test_missing_data_set_hints_fit_the_root_that_was_used(tmp_path, monkeypatch) -> None:
    """--dataset_root is suggested only when the default root was used; a file is called a file."""
    from dmlbench.data.cub import CUB200
    from dmlbench.data.image_folder import ImageFolder
    from dmlbench.errors import DatasetError

    monkeypatch.chdir(tmp_path)
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    with pytest.raises(DatasetError) as error:
        CUB200(chosen)
    assert "download CUB200 --root" in str(error.value) and "--dataset_root" not in str(error.value)
    with pytest.raises(DatasetError) as error:
        CUB200("datasets")
    assert "or pass --dataset_root (the default, datasets, was used)" in str(error.value)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(DatasetError, match="notes.txt is a file, give the folder"):
        CUB200(a_file)
    with pytest.raises(DatasetError, match="notes.txt is a file, not a folder"):
        ImageFolder(a_file)
