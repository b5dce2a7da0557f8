"""ImageFolder (one folder per class, optional split folders) and CSVDataset."""

from __future__ import annotations

import pytest
from dataset_trees import write_image

from dmlbench.data.csv_dataset import CSVDataset
from dmlbench.data.image_folder import ImageFolder
from dmlbench.errors import DatasetError


def test_image_folder_labels_are_sorted_class_names(tmp_path):
    for relative in ["zebra/1.jpg", "ant/b.png", "ant/a.JPG", "mole/deep/nested.jpeg"]:
        write_image(tmp_path / relative)
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    dataset = ImageFolder(tmp_path)
    assert dataset.class_names == ["ant", "mole", "zebra"]
    found = {(p.replace(str(tmp_path) + "/", ""), int(l)) for p, l in zip(dataset.paths, dataset.labels)}
    assert found == {("ant/a.JPG", 0), ("ant/b.png", 0), ("mole/deep/nested.jpeg", 1), ("zebra/1.jpg", 2)}
    assert dataset.official_split is None


def test_image_folder_split_folders_share_one_numbering(tmp_path):
    for relative in ["train/cat/1.jpg", "train/dog/1.jpg", "test/emu/1.jpg", "test/cat/2.jpg"]:
        write_image(tmp_path / "pets" / relative)
    dataset = ImageFolder(tmp_path, folder="pets")
    assert dataset.class_names == ["cat", "dog", "emu"]
    rows = sorted(zip(dataset.paths, dataset.labels.tolist(), dataset.official_split.tolist()))
    base = str(tmp_path / "pets")
    assert rows == [
        (f"{base}/test/cat/2.jpg", 0, "test"),
        (f"{base}/test/emu/1.jpg", 2, "test"),
        (f"{base}/train/cat/1.jpg", 0, "train"),
        (f"{base}/train/dog/1.jpg", 1, "train"),
    ]
    # forcing the plain layout makes "test" and "train" the classes
    assert ImageFolder(tmp_path, folder="pets", split_folders=False).class_names == ["test", "train"]


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="nothing to download"):
        ImageFolder(tmp_path / "absent", download=True)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        ImageFolder(tmp_path)


def test_csv_integer_labels_split_and_super_labels(tmp_path):
    (tmp_path / "data.csv").write_text(
        "path,label,split,super_label,comment\n"
        "a/1.jpg,12,train,1,x\n"
        "a/2.jpg,12,test,1,\n"
        "/abs/3.jpg,7,test,2,y\n"
    )
    dataset = CSVDataset(tmp_path, csv_file="data.csv")
    assert dataset.paths == [str(tmp_path / "a/1.jpg"), str(tmp_path / "a/2.jpg"), "/abs/3.jpg"]
    assert dataset.labels.tolist() == [12, 12, 7]
    assert dataset.super_labels.tolist() == [1, 1, 2]
    assert dataset.official_split.tolist() == ["train", "test", "test"]
    assert dataset.class_names is None


def test_csv_string_labels_map_to_sorted_integers_and_image_root(tmp_path):
    csv_file = tmp_path / "lists" / "mine.csv"
    csv_file.parent.mkdir()
    csv_file.write_text("label,path\nwren,w.jpg\nauk,a.jpg\nwren,w2.jpg\n")
    dataset = CSVDataset(csv_file, image_root="../images")
    assert dataset.class_names == ["auk", "wren"]
    assert dataset.labels.tolist() == [1, 0, 1]
    assert dataset.paths[1] == str(tmp_path / "lists" / "../images" / "a.jpg")
    assert dataset.official_split is None and dataset.super_labels is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("path,class\nx.jpg,1\n", "lacks the column 'label'"),
        ("path,label,split\nx.jpg,1,train\ny.jpg,2,\n", "line 3: empty 'split'"),
        ("path,label\n", "lists no samples"),
    ],
)
def test_csv_errors_name_the_problem(tmp_path, text, message):
    (tmp_path / "dataset.csv").write_text(text)
    with pytest.raises(DatasetError, match=message):
        CSVDataset(tmp_path)


def test_csv_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'dataset.csv'} not found"):
        CSVDataset(tmp_path)
