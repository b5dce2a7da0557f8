"""CUB200, Cars196, StanfordOnlineProducts and InShop read from tiny trees in the official formats;
expected labels, splits and counts are worked out by hand from the fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_trees import (
    CARS_CLASSES,
    CUB_IMAGES_PER_CLASS,
    INSHOP_ROWS,
    SOP_TEST,
    SOP_TRAIN,
    write_inshop_partition,
    write_sop_lists,
)

from dmlbench.data.cars import Cars196
from dmlbench.data.cub import CUB200
from dmlbench.data.inshop import InShop
from dmlbench.data.sop import StanfordOnlineProducts
from dmlbench.errors import DatasetError
from dmlbench.registry import lookup

# ---- CUB200 ----------------------------------------------------------------------------------


def test_cub_labels_follow_the_image_ids_and_split_is_by_class(cub_tree):
    root, class_of = cub_tree
    dataset = CUB200(root)
    assert len(dataset) == sum(CUB_IMAGES_PER_CLASS.values()) == 9
    for path, label in zip(dataset.paths, dataset.labels):
        relative = Path(path).relative_to(root / "CUB_200_2011" / "images").as_posix()
        assert class_of[relative] == label
    # classes 1, 2, 100 -> train (2 + 3 + 1 images); 101, 150 -> test (1 + 2)
    split = dataset.official_split
    assert sorted(set(dataset.labels[split == "train"].tolist())) == [1, 2, 100]
    assert sorted(set(dataset.labels[split == "test"].tolist())) == [101, 150]
    assert (split == "train").sum() == 6 and (split == "test").sum() == 3
    assert dataset.super_labels is None
    assert dataset.class_names[150] == "150.Bird_150"


def test_cub_accepts_root_pointing_at_the_dataset_folder(cub_tree):
    root, _ = cub_tree
    direct = CUB200(root / "CUB_200_2011")
    assert direct.paths == CUB200(root).paths


def test_cub_missing_tree_names_the_file_and_the_download_command(tmp_path):
    with pytest.raises(DatasetError) as info:
        CUB200(tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'CUB_200_2011' / 'images.txt'} not found" in message
    assert f"python -m dmlbench.data download CUB200 --root {tmp_path}" in message


def test_incomplete_dataset_folder_given_as_root_is_not_nested_in_the_message(tmp_path):
    (tmp_path / "CUB_200_2011").mkdir()
    with pytest.raises(DatasetError, match=f"^CUB200: {tmp_path / 'CUB_200_2011' / 'images.txt'} not found"):
        CUB200(tmp_path / "CUB_200_2011")


def test_cub_missing_labels_file_is_named(cub_tree):
    root, _ = cub_tree
    (root / "CUB_200_2011" / "image_class_labels.txt").unlink()
    with pytest.raises(DatasetError, match="image_class_labels.txt not found"):
        CUB200(root)


def test_cub_image_without_label_line_is_reported(cub_tree):
    root, _ = cub_tree
    labels_file = root / "CUB_200_2011" / "image_class_labels.txt"
    lines = labels_file.read_text().splitlines()
    labels_file.write_text("\n".join(line for line in lines if not line.startswith("4 ")) + "\n")
    with pytest.raises(DatasetError, match="image id 4 .* has no line"):
        CUB200(root)


def test_cub_malformed_line_is_reported_with_its_number(cub_tree):
    root, _ = cub_tree
    images_file = root / "CUB_200_2011" / "images.txt"
    images_file.write_text(images_file.read_text() + "10\n")
    with pytest.raises(DatasetError, match="images.txt line 10 has 1 fields"):
        CUB200(root)


def test_constructor_does_not_open_images(cub_tree):
    root, class_of = cub_tree
    for relative in class_of:
        (root / "CUB_200_2011" / "images" / relative).unlink()
    assert len(CUB200(root)) == 9  # building the sample list needs no image file


def test_cub_items_load_as_rgb_with_their_label(cub_tree):
    root, _ = cub_tree
    dataset = CUB200(root, transform=lambda image: image.size)
    assert dataset[0] == ((4, 3), int(dataset.labels[0]))


# ---- Cars196 ---------------------------------------------------------------------------------


def test_cars_reads_the_mat_file_and_splits_by_class_not_by_test_field(cars_tree):
    dataset = Cars196(cars_tree)
    assert dataset.labels.tolist() == CARS_CLASSES
    expected_paths = [
        cars_tree / "cars196" / "car_ims" / f"{i + 1:06d}.jpg" for i in range(len(CARS_CLASSES))
    ]
    assert dataset.paths == [str(p) for p in expected_paths]
    expected_split = ["train" if c <= 98 else "test" for c in CARS_CLASSES]
    assert dataset.official_split.tolist() == expected_split
    assert len(dataset.class_names) == 196 and dataset.class_names[0] == "Maker Model 1"


def test_cars_missing_annotations_message(tmp_path):
    (tmp_path / "cars196").mkdir()
    with pytest.raises(
        DatasetError, match=r"cars196/cars_annos.mat not found; run `python -m dmlbench.data download Cars196"
    ):
        Cars196(tmp_path)


def test_cars_corrupt_mat_file_is_a_dataset_error(tmp_path):
    (tmp_path / "cars196").mkdir()
    (tmp_path / "cars196" / "cars_annos.mat").write_bytes(b"not a matlab file at all" * 10)
    with pytest.raises(DatasetError, match="cars_annos.mat"):
        Cars196(tmp_path)


# ---- Stanford Online Products ----------------------------------------------------------------


@pytest.mark.parametrize("in_info_files", [False, True])
def test_sop_lists_give_labels_super_labels_and_split(tmp_path, in_info_files):
    folder = tmp_path / "Stanford_Online_Products"
    write_sop_lists(folder, in_info_files=in_info_files)
    dataset = StanfordOnlineProducts(tmp_path)
    rows = [(r, "train") for r in SOP_TRAIN] + [(r, "test") for r in SOP_TEST]
    assert dataset.labels.tolist() == [r[1] for r, _ in rows]
    assert dataset.super_labels.tolist() == [r[2] for r, _ in rows]
    assert dataset.official_split.tolist() == [s for _, s in rows]
    assert dataset.paths == [str(folder / r[3]) for r, _ in rows]
    assert dataset.num_classes == 4  # classes 1, 2, 11319, 11320


def test_sop_missing_test_list_is_named(sop_tree):
    (sop_tree / "Stanford_Online_Products" / "Ebay_test.txt").unlink()
    with pytest.raises(DatasetError, match="Ebay_test.txt not found"):
        StanfordOnlineProducts(sop_tree)


# ---- In-Shop ---------------------------------------------------------------------------------


def test_inshop_items_map_to_sorted_integers(inshop_tree):
    dataset = InShop(inshop_tree)
    assert dataset.item_ids == ["id_00000001", "id_00000002", "id_00000079", "id_00000080"]
    by_hand = {"id_00000001": 0, "id_00000002": 1, "id_00000079": 2, "id_00000080": 3}
    assert dataset.labels.tolist() == [by_hand[item] for _, item, _ in INSHOP_ROWS]
    assert [dataset.item_ids[label] for label in dataset.labels] == [item for _, item, _ in INSHOP_ROWS]
    assert dataset.official_split.tolist() == [status for _, _, status in INSHOP_ROWS]
    assert dataset.paths[0] == str(inshop_tree / "InShop" / INSHOP_ROWS[0][0])


def test_inshop_count_line_must_match(tmp_path):
    write_inshop_partition(
        tmp_path / "InShop" / "Eval" / "list_eval_partition.txt", INSHOP_ROWS, declared=52712
    )
    with pytest.raises(DatasetError, match="declares 52712 images on line 1 but lists 7"):
        InShop(tmp_path)


def test_inshop_unknown_status_is_reported(tmp_path):
    rows = INSHOP_ROWS[:2] + [("img/x.jpg", "id_1", "validation")]
    write_inshop_partition(tmp_path / "InShop" / "Eval" / "list_eval_partition.txt", rows)
    with pytest.raises(DatasetError, match="'validation'"):
        InShop(tmp_path)


def test_inshop_missing_tree_explains_the_manual_download(tmp_path):
    with pytest.raises(DatasetError) as info:
        InShop(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "InShop" / "Eval" / "list_eval_partition.txt") in message
    assert "img.zip" in message and "drive.google.com" in message


def test_registry_names_resolve_to_the_classes():
    assert lookup("dataset", "CUB200") is CUB200
    assert lookup("dataset", "Cars196") is Cars196
    assert lookup("dataset", "StanfordOnlineProducts") is StanfordOnlineProducts
    assert lookup("dataset", "InShop") is InShop


def test_labels_are_int64_arrays(cub_tree):
    assert CUB200(cub_tree[0]).labels.dtype == np.int64
