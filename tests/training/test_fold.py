"""train_fold on a small fake fold environment: linear models on fixed vectors. The outcome it
returns, the validations it records and the best.pt it keeps are checked against each other's
independent recomputation (the naive metrics of docs/protocol.md on best.pt's weights)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dmlbench.config.defaults import builtin_defaults
from dmlbench.data.folds import FoldData
from dmlbench.evaluation.protocol import EvaluationSettings
from dmlbench.training.fold import train_fold

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from naive_retrieval import l2_normalised, naive_metrics

CPU = torch.device("cpu")


class VectorSet(torch.utils.data.Dataset):
    """Samples (vector, label) with the ``labels`` array the samplers read."""

    def __init__(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        self.vectors, self.labels = torch.from_numpy(vectors), labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.vectors[index], int(self.labels[index])


class FakeStore:
    def __init__(self) -> None:
        self.accuracies: list[tuple] = []
        self.training_values: list[tuple] = []

    def add_accuracies(self, scheme, split, status, mode, epoch, metrics) -> None:
        self.accuracies.append((scheme, split, status, mode, epoch, dict(metrics)))

    def add_training_values(self, scheme, step, values) -> None:
        self.training_values.append((scheme, step, dict(values)))


class FakeFoldEnvironment:
    def __init__(self, folder: Path) -> None:
        rng = np.random.default_rng(0)
        labels = np.arange(48) % 6
        centres = rng.standard_normal((6, 5))
        self.vectors = (centres[labels] + 0.8 * rng.standard_normal((48, 5))).astype(np.float32)
        self.labels = labels
        self.settings = {
            **builtin_defaults(),
            "num_epochs_train": 4,
            "iterations_per_epoch": 3,
            "batch_size": 12,
            "save_interval": 2,
            "patience": 10,
            "dataloader_num_workers": 0,
            "freeze_trunk_batchnorm": False,
            "sampler": {"MPerClassSampler": {"m": 2}},
            "optimizers": {
                "trunk_optimizer": {"SGD": {"lr": 0.05}},
                "embedder_optimizer": {"SGD": {"lr": 0.05}},
            },
        }
        self.device = CPU
        self.evaluation = EvaluationSettings(
            batch_size=16,
            num_workers=0,
            normalize=True,
            recall_at=(),
            chunk_size=None,
            binarize=False,
            check_untrained_accuracy=False,
        )
        self.experiment_dir = folder
        self.store = FakeStore()

    def build_models(self, fold):
        torch.manual_seed(3)
        return {"trunk": nn.Linear(5, 5), "embedder": nn.Linear(5, 3)}

    def subset(self, fold, split, trunk, train=False):
        indices = fold.indices[split]
        return VectorSet(self.vectors[indices], self.labels[indices])

    def plugin_context(self, fold, models):
        return {"num_classes": len(fold.label_map), "embedding_size": 3}

    def fold_seed(self, fold):
        return 11

    def checkpoint_dir(self, fold):
        return self.experiment_dir / fold.scheme / "checkpoints"


def test_train_fold_keeps_the_best_validation_and_records_every_one(tmp_path, quiet_progress):
    env = FakeFoldEnvironment(tmp_path)
    train, val = np.arange(24), np.arange(24, 48)  # 6 classes in each (label = index mod 6)
    fold = FoldData("f0", {"train": train, "val": val}, {label: label for label in range(6)})
    outcome = train_fold(env, fold, resume=False)

    assert outcome["epochs"] == 4 and outcome["stop_reason"] == "reached num_epochs_train = 4"
    rows = [r for r in env.store.accuracies if r[:2] == ("f0", "val")]
    assert [(r[2], r[4]) for r in rows] == [
        ("untrained_trunk_and_embedder", 0),
        ("trained", 2),
        ("trained", 4),
    ]
    scores = {r[4]: r[5]["mean_average_precision_at_r"] for r in rows}
    best_epoch = max(scores, key=lambda epoch: (scores[epoch], -epoch))
    assert outcome["best_epoch"] == best_epoch and outcome["best_score"] == scores[best_epoch]
    assert [row["epoch"] for row in outcome["history"]] == [0, 2, 4]
    assert env.store.training_values, "the training log reached the record store"

    # best.pt holds the models of the best epoch: their validation, recomputed naively
    saved = torch.load(env.checkpoint_dir(fold) / "best.pt", map_location="cpu", weights_only=False)
    models = env.build_models(fold)
    for name, module in models.items():
        module.load_state_dict(saved["models"][name])
    with torch.no_grad():
        embeddings = models["embedder"](models["trunk"](torch.from_numpy(env.vectors[val]))).numpy()
    normalised = l2_normalised(embeddings)
    expected = naive_metrics(normalised, env.labels[val], normalised, env.labels[val], exclude_self=True)
    best_row = next(r[5] for r in rows if r[4] == best_epoch)
    for name, value in expected.items():
        assert best_row[name] == pytest.approx(value, abs=1e-6)


def test_other_splits_to_eval_are_scored_during_training(tmp_path, quiet_progress):
    """splits_to_eval [train, val, test] (powerful-benchmarker's --splits_to_eval while training):
    train and test are scored at every validation and recorded apart (mode during_training); val
    alone selects the best epoch."""
    env = FakeFoldEnvironment(tmp_path)
    env.settings["splits_to_eval"] = ["train", "val", "test"]
    train, val, test = np.arange(18), np.arange(18, 36), np.arange(36, 48)  # 6 classes in each
    fold = FoldData("f0", {"train": train, "val": val, "test": test}, {label: label for label in range(6)})
    outcome = train_fold(env, fold, resume=False)

    rows = {split: [r for r in env.store.accuracies if r[1] == split] for split in ("train", "val", "test")}
    for split in ("train", "test"):
        assert [(r[3], r[4]) for r in rows[split]] == [
            ("during_training", 0),
            ("during_training", 2),
            ("during_training", 4),
        ]
    val_scores = {r[4]: r[5]["mean_average_precision_at_r"] for r in rows["val"]}
    assert outcome["best_epoch"] == max(val_scores, key=lambda epoch: (val_scores[epoch], -epoch))

    # the test row of the best epoch is the test split scored with best.pt's models, recomputed naively
    saved = torch.load(env.checkpoint_dir(fold) / "best.pt", map_location="cpu", weights_only=False)
    models = env.build_models(fold)
    for name, module in models.items():
        module.load_state_dict(saved["models"][name])
    with torch.no_grad():
        embeddings = models["embedder"](models["trunk"](torch.from_numpy(env.vectors[test]))).numpy()
    normalised = l2_normalised(embeddings)
    expected = naive_metrics(normalised, env.labels[test], normalised, env.labels[test], exclude_self=True)
    best_test = next(r[5] for r in rows["test"] if r[4] == outcome["best_epoch"])
    for name, value in expected.items():
        assert best_test[name] == pytest.approx(value, abs=1e-6)
