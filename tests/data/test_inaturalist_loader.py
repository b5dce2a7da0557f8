"""INaturalist: iNat 2021 json + folder, the per-super-category 50/50 class split, and the
contextual-similarity paper's split files."""

from __future__ import annotations

import numpy as np
import pytest
from dataset_trees import INAT_IMAGES_PER_CLASS, INAT_SUPERCATEGORIES, write_image

from dmlbench.data.inaturalist import INaturalist
from dmlbench.errors import DatasetError


def test_json_labels_paths_and_super_labels(inat_tree):
    root, data = inat_tree
    dataset = INaturalist(root)
    folder = root / "iNaturalist2021"
    category_of_image = {a["image_id"]: a["category_id"] for a in data["annotations"]}
    file_of_image = {i["id"]: i["file_name"] for i in data["images"]}
    assert dataset.paths == [str(folder / file_of_image[a["image_id"]]) for a in data["annotations"]]
    assert dataset.labels.tolist() == [category_of_image[a["image_id"]] for a in data["annotations"]]
    # super-labels index the sorted names: Amphibians 0, Birds 1, Fungi 2, Plants 3
    by_hand = {"Amphibians": 0, "Birds": 1, "Fungi": 2, "Plants": 3}
    superc_of_category = {c["id"]: c["supercategory"] for c in data["categories"]}
    assert dataset.super_labels.tolist() == [by_hand[superc_of_category[int(l)]] for l in dataset.labels]
    assert dataset.supercategories == ["Amphibians", "Birds", "Fungi", "Plants"]


def test_split_halves_the_classes_of_every_super_category(inat_tree):
    root, _ = inat_tree
    dataset = INaturalist(root)
    split = dataset.official_split
    train_classes = set(dataset.labels[split == "train"].tolist())
    test_classes = set(dataset.labels[split == "test"].tolist())
    assert not train_classes & test_classes
    for super_label, name in enumerate(dataset.supercategories):
        classes = set(dataset.labels[dataset.super_labels == super_label].tolist())
        n = INAT_SUPERCATEGORIES[name]
        assert len(classes) == n
        assert len(classes & test_classes) == n // 2  # Plants 9 -> 4 test, 5 train; Amphibians 1 -> 0
        assert len(classes & train_classes) == n - n // 2
    assert (split == "test").sum() == sum(
        n // 2 for n in INAT_SUPERCATEGORIES.values()
    ) * INAT_IMAGES_PER_CLASS


def test_split_depends_on_the_seed_only(inat_tree):
    root, _ = inat_tree
    first = INaturalist(root, split_seed=0).official_split
    assert (INaturalist(root, split_seed=0).official_split == first).all()
    # 9, 6 and 4 classes give C(9,4)*C(6,3)*C(4,2) = 15120 possible splits
    others = [INaturalist(root, split_seed=seed).official_split for seed in (1, 2, 3)]
    assert any((other != first).any() for other in others)


def _write_split_files(folder, rows_by_split):
    for split, rows in rows_by_split.items():
        (folder / f"iNaturalist_{split}.txt").write_text("".join(f"{p},{s},{c}\n" for p, s, c in rows))


def test_paper_split_files_define_the_split(inat_tree):
    root, _ = inat_tree
    folder = root / "iNaturalist2021"
    rows = {
        "train": [("00003_Kingdom_Birds_sp3/3-0.jpg", 1, 3), ("00007_Kingdom_Plants_sp7/7-1.jpg", 8, 7)],
        "test": [("00001_Kingdom_Fungi_sp1/1-0.jpg", 4, 1)],
    }
    _write_split_files(folder, rows)
    dataset = INaturalist(root)
    assert dataset.split_source == "files"
    assert dataset.labels.tolist() == [3, 7, 1]
    assert dataset.super_labels.tolist() == [1, 8, 4]
    assert dataset.official_split.tolist() == ["train", "train", "test"]
    assert dataset.paths[0] == str(folder / "train_mini" / "00003_Kingdom_Birds_sp3" / "3-0.jpg")
    # ...unless asked to ignore them
    assert (
        len(INaturalist(root, use_split_files=False))
        == sum(INAT_SUPERCATEGORIES.values()) * INAT_IMAGES_PER_CLASS
    )


def test_resized_folder_of_the_paper_is_read_without_json(tmp_path):
    folder = tmp_path / "train_mini_resized"
    folder.mkdir()
    write_image(folder / "00000_A_b" / "x.jpg")
    _write_split_files(folder, {"train": [("00000_A_b/x.jpg", 0, 0)], "test": [("00000_A_b/x.jpg", 0, 0)]})
    dataset = INaturalist(folder)
    assert dataset.paths[0] == str(folder / "00000_A_b" / "x.jpg")


def test_bad_split_file_line_is_reported(inat_tree):
    root, _ = inat_tree
    folder = root / "iNaturalist2021"
    (folder / "iNaturalist_train.txt").write_text("a.jpg,1,2\nb.jpg 1 2\n")
    (folder / "iNaturalist_test.txt").write_text("c.jpg,1,3\n")
    with pytest.raises(DatasetError, match="iNaturalist_train.txt line 2"):
        INaturalist(root)


def test_missing_tree_and_broken_json(tmp_path):
    with pytest.raises(DatasetError, match="iNaturalist2021/train_mini.json not found"):
        INaturalist(tmp_path)
    (tmp_path / "iNaturalist2021").mkdir()
    (tmp_path / "iNaturalist2021" / "train_mini.json").write_text("{broken")
    with pytest.raises(DatasetError, match="not valid JSON"):
        INaturalist(tmp_path)


def test_labels_are_integers(inat_tree):
    assert INaturalist(inat_tree[0]).labels.dtype == np.int64
