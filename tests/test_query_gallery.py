"""In-Shop's protocol end to end: the test split is scored query against gallery, checked
against embeddings recomputed here and a naive nearest-neighbour loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dmlbench.cli import main
from dmlbench.config.experiment_files import load_saved_configs
from dmlbench.explain.command import main as explain_main
from dmlbench.runner import Experiment

ITEMS = {"train": range(0, 6), "eval": range(6, 12)}


def build_inshop(root: Path) -> None:
    """12 items of one colour each (plus noise); items 0-5 train, 6-11 query (2) + gallery (2)."""
    rng = np.random.default_rng(0)
    rows = []
    for item in range(12):
        colour = rng.integers(0, 255, size=3)
        for shot in range(4):
            name = f"img/MEN/Tees/id_{item:08d}/{shot:02d}_1_front.jpg"
            pixels = np.clip(colour + rng.normal(0, 25, size=(32, 32, 3)), 0, 255).astype(np.uint8)
            path = root / "InShop" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)
            status = "train" if item in ITEMS["train"] else ("query" if shot < 2 else "gallery")
            rows.append(f"{name} id_{item:08d} {status}")
    partition = root / "InShop" / "Eval" / "list_eval_partition.txt"
    partition.parent.mkdir(parents=True)
    partition.write_text(f"{len(rows)}\nimage_name item_id evaluation_status\n" + "\n".join(rows) + "\n")


def test_inshop_is_scored_query_against_gallery(tmp_path, capsys):
    build_inshop(tmp_path / "data")
    code = main(
        [
            "--experiment_name",
            "inshop",
            "--root_experiment_folder",
            str(tmp_path / "logs"),
            "--dataset_root",
            str(tmp_path / "data"),
            "--config_dataset",
            "[default, with_inshop]",
            "--models~OVERRIDE~",
            "{trunk: {SmallConvNet: {num_features: 16, width: 8}}, embedder: {MLP: {layer_sizes: [8]}}}",
            "--transforms~OVERRIDE~",
            "{train: {RandomHorizontalFlip: {p: 0.5}}, eval: {}}",
            "--loss_funcs~OVERRIDE~",
            "{metric_loss: {ContrastiveLoss: {}}}",
            "--sampler",
            "{MPerClassSampler: {m: 2}}",
            "--batch_size",
            "4",
            "--optimizers~APPLY~3",
            "{lr: 0.01}",
            "--num_epochs_train",
            "1",
            "--iterations_per_epoch",
            "2",
            "--dataloader_num_workers",
            "0",
        ]
    )
    assert code == 0
    folder = tmp_path / "logs" / "inshop"
    report = json.loads((folder / "meta" / "report.json").read_text())
    # The untrained trunk's features separate the item colours clearly (no near-ties), so an
    # independent recomputation is well conditioned.
    reported = report["results"]["test"]["untrained_trunk"]["separated"]["per_fold"]
    ((scheme, metrics),) = reported.items()

    # Recompute: trunk features of query and gallery images, then P@1 and R-Precision by a loop
    # over queries (gallery ranked by cosine similarity; relevant = same item, R = 2 here).
    experiment = Experiment(load_saved_configs(folder), folder, tmp_path / "data")
    fold = experiment.folds[0]
    trunk = experiment.build_models(fold)["trunk"].eval()
    transform = experiment.transforms(trunk)["eval"]
    dataset = experiment.dataset

    def embed(indices):
        with torch.no_grad():
            features = trunk(torch.stack([transform(dataset.load_image(int(i))) for i in indices]))
        return torch.nn.functional.normalize(features, dim=1), dataset.labels[indices]

    query, query_labels = embed(fold.indices["query"])
    gallery, gallery_labels = embed(fold.indices["gallery"])
    assert len(query) == 12 and len(gallery) == 12
    first_hits, r_precisions = [], []
    for q in range(len(query)):
        similarities = (gallery @ query[q]).tolist()
        ranking = sorted(range(len(gallery)), key=lambda g: (-similarities[g], g))
        relevant = [gallery_labels[g] == query_labels[q] for g in ranking]
        r = sum(relevant)
        first_hits.append(relevant[0])
        r_precisions.append(sum(relevant[:r]) / r)
    assert metrics["precision_at_1"] == pytest.approx(np.mean(first_hits))
    assert metrics["r_precision"] == pytest.approx(np.mean(r_precisions))
    assert "concatenated" not in report["results"]["test"]["trained"]  # one model: no ensemble
    # The report's retrieval examples: queries from the query split, neighbours from the gallery.
    retrieval = report["retrieval"]
    assert retrieval["split"] == "test" and retrieval["grids"][0]["queries"]
    assert all(q < 12 for q in retrieval["grids"][0]["queries"])  # positions of the 12 query images
    assert "neighbours from the 12 gallery images" in retrieval["note"]
    items = retrieval["explanations"]["items"]
    assert items and all(n["index"] >= 12 for item in items for n in item["neighbours"])

    # The explain command on the same split: query 3 of the query images against the gallery,
    # the neighbours equal to the report's ranking of the same embeddings.
    argv = ["--experiment_name", "inshop", "--root_experiment_folder", str(tmp_path / "logs")]
    assert explain_main([*argv, "--dataset_root", str(tmp_path / "data"), "--query", "3", "--top", "3"]) == 0
    record = json.loads((folder / "meta" / "explain" / "test_query3.json").read_text())
    assert record["query"]["index"] == 3 and all(n["index"] >= 12 for n in record["neighbours"])
    capsys.readouterr()
    assert explain_main([*argv, "--dataset_root", str(tmp_path / "data"), "--query", "12"]) != 0
    assert "the test split has 12 query images (0..11)" in capsys.readouterr().err
