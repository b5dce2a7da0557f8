"""Command-line pieces the end-to-end tests share: the demo experiment shrunk to seconds."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The demo run shrunk to seconds: 16 classes x 10 images, 2 training sets, 3 epochs of 4 iterations.
TINY_RUN = [
    "--reproduce_results",
    str(REPO / "exp_configs" / "demo"),
    "--merge_argparse_when_resuming",
    "--dataset",
    "{DemoShapes: {num_classes: 16, images_per_class: 10}}",
    "--split_manager",
    "{MLRCSplitManager: {num_training_sets: 2}}",
    "--num_epochs_train",
    "3",
    "--iterations_per_epoch",
    "4",
    "--save_interval",
    "1",
    "--batch_size",
    "16",
]
#: The demo run shrunk further: 16 classes x 8 images, 2 folds of 2 partitions, 2 epochs of 2 iterations.
SMALL_RUN = [
    "--reproduce_results",
    str(REPO / "exp_configs" / "demo"),
    "--merge_argparse_when_resuming",
    "--dataset",
    "{DemoShapes: {num_classes: 16, images_per_class: 8}}",
    "--split_manager",
    "{MLRCSplitManager: {num_training_partitions: 2, num_training_sets: 2}}",
    "--num_epochs_train",
    "2",
    "--iterations_per_epoch",
    "2",
    "--save_interval",
    "1",
    "--batch_size",
    "16",
]
#: A demo search's trials shrunk to seconds: 16 classes x 8 images, 2 folds, 1 epoch of 2 iterations.
TINY_TRIAL = [
    "--num_epochs_train",
    "1",
    "--iterations_per_epoch",
    "2",
    "--save_interval",
    "1",
    "--batch_size",
    "16",
    "--check_untrained_accuracy",
    "false",
    "--dataset~APPLY~2",
    "{num_classes: 16, images_per_class: 8}",
    "--split_manager~APPLY~2",
    "{num_training_partitions: 2, num_training_sets: 2}",
]
