"""A validation split too small to select a model on is refused before anything is written
(1 class, or one sample per class: every metric is trivial), with the numbers and the fixes;
a small one is warned about."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from dmlbench.cli import main
from dmlbench.data.split_checks import check_validation_splits
from dmlbench.errors import SplitError
from dmlbench.split_managers import MLRCSplitManager


def scheme(val_labels: list[int]) -> tuple[dict, np.ndarray]:
    """One scheme whose val split holds samples with these labels (train: one other class)."""
    labels = np.array(val_labels + [999, 999])
    return {
        "s0": {"train": np.array([len(val_labels), len(val_labels) + 1]), "val": np.arange(len(val_labels))}
    }, labels


@pytest.mark.parametrize(
    "val_labels, message",
    [
        ([3] * 12, "has 1 class \\(12 samples\\)"),
        ([1, 2, 3, 4, 5], "has 5 classes of one sample each \\(5 samples\\)"),
    ],
)
def test_trivial_validation_splits_are_refused_with_the_numbers_and_the_fixes(val_labels, message) -> None:
    splits, labels = scheme(val_labels)
    with pytest.raises(SplitError, match=message) as error:
        check_validation_splits(splits, labels, {"MLRCSplitManager": {}})
    assert "num_training_partitions" in str(error.value) and "test_size" in str(error.value)


def test_small_validation_splits_are_warned_about_and_large_ones_pass_silently() -> None:
    splits, labels = scheme([0, 0, 1, 1, 2])  # 3 classes, 4 queries (class 2 has one sample)
    with pytest.warns(UserWarning, match="only 3 classes and 4 queries"):
        check_validation_splits(splits, labels)
    splits, labels = scheme([c for c in range(12) for _ in range(5)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_validation_splits(splits, labels)
        check_validation_splits(
            {"s0": {"train": np.arange(4), "test": np.arange(4, 8)}}, np.arange(8)
        )  # no val


def test_mlrc_folds_of_a_ten_class_data_set_are_refused() -> None:
    labels = np.repeat(np.arange(10), 6)  # 5 test classes, 5 trainval in 4 folds: 1 val class
    splits = MLRCSplitManager().split(labels)
    with pytest.raises(SplitError, match="has 1 class \\(6 samples\\)"):
        check_validation_splits(splits, labels, {"MLRCSplitManager": {}})


def test_the_run_fails_before_writing_anything(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = [
        "--experiment_name",
        "tiny",
        "--root_experiment_folder",
        str(tmp_path / "logs"),
        "--dataset_root",
        str(tmp_path / "data"),
        "--dataset~OVERRIDE~",
        "{DemoShapes: {num_classes: 10, images_per_class: 4, image_size: 16}}",
        "--split_manager~OVERRIDE~",
        "{MLRCSplitManager: {}}",
        "--device",
        "cpu",
    ]
    assert main(argv) == 2
    assert "validation split of Test50_50_Partitions4_0 has 1 class (4 samples)" in capsys.readouterr().err
    assert not (tmp_path / "logs" / "tiny").exists()


def test_small_validation_splits_of_several_folds_are_one_warning() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3])
    splits = {
        "s0": {"train": np.arange(0), "val": np.array([0, 1, 2, 3])},  # 2 classes, 4 queries
        "s1": {"train": np.arange(0), "val": np.array([2, 3, 4, 5, 6, 7, 8])},  # 3 classes, 7 queries
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_validation_splits(splits, labels)
    assert len(caught) == 1
    assert "validation splits of 2 folds (s0, s1) have only 2-3 classes and 4-7 queries" in str(
        caught[0].message
    )
