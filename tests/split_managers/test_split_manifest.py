"""split_manifest: class lists, counts and hashes computed independently."""

from __future__ import annotations

import hashlib

import numpy as np

from dmlbench.split_managers import MLRCSplitManager, split_manifest


def test_manifest_entries_match_a_hand_computed_hash():
    labels = np.array([7, 3, 7, 5])
    splits = {"S": {"train": np.array([0, 2], dtype=np.int64), "test": np.array([1, 3], dtype=np.int64)}}
    manifest = split_manifest(splits, labels)
    expected_train = hashlib.sha256(b'{"classes":[7],"indices":[0,2]}').hexdigest()
    expected_test = hashlib.sha256(b'{"classes":[3,5],"indices":[1,3]}').hexdigest()
    assert manifest == {
        "S": {
            "train": {"classes": [7], "num_samples": 2, "sha256": expected_train},
            "test": {"classes": [3, 5], "num_samples": 2, "sha256": expected_test},
        }
    }


def test_manifest_hash_changes_with_any_sample_and_is_stable():
    labels = np.repeat(np.arange(20), 3)
    manifest = split_manifest(MLRCSplitManager().split(labels), labels)
    again = split_manifest(MLRCSplitManager().split(labels), labels)
    assert manifest == again
    hashes = {entry["sha256"] for scheme in manifest.values() for entry in scheme.values()}
    assert len(hashes) == 9  # 4 train, 4 val, 1 shared test
    moved = labels.copy()
    moved[0] = 9  # sample 0 leaves class 0 (fold-0 train) for class 9 (fold-0 val): same class lists
    changed = split_manifest(MLRCSplitManager().split(moved), moved)
    scheme = "Test50_50_Partitions4_0"
    assert changed[scheme]["val"]["classes"] == manifest[scheme]["val"]["classes"]
    assert changed[scheme]["train"]["classes"] == manifest[scheme]["train"]["classes"]
    assert changed[scheme]["val"]["sha256"] != manifest[scheme]["val"]["sha256"]
    assert changed[scheme]["train"]["sha256"] != manifest[scheme]["train"]["sha256"]
    assert changed[scheme]["test"]["sha256"] == manifest[scheme]["test"]["sha256"]


def test_manifest_types_are_plain_python():
    labels = np.arange(8)
    manifest = split_manifest(
        MLRCSplitManager(num_training_partitions=2, num_training_sets=1).split(labels), labels
    )
    entry = manifest["Test50_50_Partitions2_0"]["val"]
    assert type(entry["num_samples"]) is int and all(type(c) is int for c in entry["classes"])
