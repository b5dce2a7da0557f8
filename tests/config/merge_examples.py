"""Config pieces in the shape of powerful-benchmarker's yaml files, merged by the merge tests."""

OPTIMIZERS = {
    "optimizers": {
        "trunk_optimizer": {"RMSprop": {"lr": 1e-6, "weight_decay": 1e-4}},
        "embedder_optimizer": {"Adam": {"lr": 0.01}},
    }
}
TRAINER = {
    "trainer": {
        "MetricLossOnly": {
            "iterations_per_epoch": 100,
            "dataloader_num_workers": 2,
            "batch_size": 32,
            "loss_weights": None,
        }
    },
    "num_epochs_train": 1000,
}
SPLIT = {
    "split_manager": {
        "ClassDisjointSplitManager": {"test_size": 0.5, "test_start_idx": 0.5, "num_training_partitions": 4}
    }
}
TRANSFORMS = {
    "transforms": {
        "train": {
            "Resize": {"size": 256},
            "RandomResizedCrop": {"size": 227},
            "RandomHorizontalFlip": {"p": 0.5},
        },
        "eval": {"Resize": {"size": 256}, "CenterCrop": {"size": 227}},
    }
}
