"""``python -m dmlbench.explain`` on tiny trained experiments: the PNG and JSON, the ensemble, AVSL's
dispatch, and the one-line errors (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmlbench.cli import main as run_main
from dmlbench.explain.command import main as explain_main

EXP = Path(__file__).resolve().parents[2] / "exp_configs"
TINY = [
    "--merge_argparse_when_resuming",
    "--dataset~OVERRIDE~",
    "{DemoShapes: {num_classes: 16, images_per_class: 8, image_size: 32}}",
    "--batch_size",
    "16",
    "--transforms~OVERRIDE~",
    "{train: {}, eval: {}}",
    "--num_epochs_train",
    "1",
    "--iterations_per_epoch",
    "2",
    "--save_interval",
    "1",
    "--check_untrained_accuracy",
    "false",
    "--device",
    "cpu",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("logs")
    argv = ["--reproduce_results", str(EXP / "demo"), "--experiment_name", "tiny", "--root_experiment_folder"]
    assert run_main([*argv, str(root), "--dataset_root", str(root / "data"), *TINY]) == 0
    return root


def explain(root: Path, *extra: str) -> int:
    return explain_main(
        [
            "--experiment_name",
            "tiny",
            "--root_experiment_folder",
            str(root),
            "--dataset_root",
            str(root / "data"),
            *extra,
        ]
    )


def test_png_and_json_of_a_query_and_its_neighbours(trained, capsys):
    assert explain(trained, "--query", "5", "--top", "3") == 0
    png = trained / "tiny" / "meta" / "explain" / "test_query5.png"
    assert f"wrote {png}" in capsys.readouterr().out
    record = json.loads(png.with_suffix(".json").read_text())
    assert record["query"]["index"] == 5 and record["models"].startswith("best fold")
    neighbours = record["neighbours"]
    assert [n["rank"] for n in neighbours] == [1, 2, 3]
    assert 5 not in [n["index"] for n in neighbours]
    similarities = [n["similarity"] for n in neighbours]
    assert similarities == sorted(similarities, reverse=True)
    for neighbour in neighbours:  # SmallConvNet (average pooling) + a one-layer MLP: exact
        assert neighbour["exact"] is True
        assert neighbour["contribution_sum"] == pytest.approx(neighbour["similarity"], abs=1e-5)
    picture = np.asarray(Image.open(png).convert("RGB"))
    assert picture.shape[0] > 300 and picture.std() > 10


def test_ensemble_and_a_chosen_fold(trained, tmp_path):
    out = tmp_path / "ensemble.png"
    assert explain(trained, "--query", "0", "--ensemble", "--top", "2", "--out", str(out)) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["models"] == "concatenated (4 folds)"
    assert all(abs(n["contribution_sum"] - n["similarity"]) < 1e-5 for n in record["neighbours"])
    assert (
        explain(trained, "--query", "0", "--fold", "1", "--top", "1", "--out", str(tmp_path / "f1.png")) == 0
    )
    assert json.loads((tmp_path / "f1.json").read_text())["models"] == "fold Test50_50_Partitions4_1"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--experiment_name", "tinny", "--query", "0"], "no experiment folder"),
        (["--query", "100000"], "--query 100000: the test split has 64 images (0..63)"),
        (["--query", "0", "--fold", "7"], "--fold 7: the experiment has 4 folds (0..3)"),
        (["--query", "0", "--split", "tset"], "--split tset"),
        (["--query", "0", "--top", "0"], "--top 0: must be at least 1"),
        (["--query", "0", "--out", "x.jpg"], "expected a .png path"),
    ],
)
def test_one_line_errors_exit_2_and_write_nothing(trained, capsys, arguments, message):
    root = ["--root_experiment_folder", str(trained), "--dataset_root", str(trained / "data")]
    if "--experiment_name" not in arguments:
        arguments = ["--experiment_name", "tiny", *arguments]
    before = sorted(p for p in (trained / "tiny" / "meta").rglob("*") if "explain" in p.parts)
    assert explain_main([*arguments, *root]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert message in error[-1] and error[-1].startswith("error: ")
    assert sorted(p for p in (trained / "tiny" / "meta").rglob("*") if "explain" in p.parts) == before
    if "tinny" in arguments:
        assert "did you mean tiny" in error[-1]


def test_avsl_experiments_go_to_the_avsl_explanation(tmp_path):
    argv = ["--reproduce_results", str(EXP / "demo_avsl"), "--experiment_name", "tiny"]
    models = (
        "{trunk~OVERRIDE~: {MultiLevelSmallConvNet: {width: 4, num_blocks: 3, num_levels: 3}}, "
        "embedder~OVERRIDE~: {AVSLEmbedder: {dim: 8}}}"
    )
    tiny = [*TINY, "--models", models]
    tiny[2] = "{DemoShapes: {num_classes: 16, images_per_class: 8, image_size: 16}}"
    assert (
        run_main(
            [
                *argv,
                "--root_experiment_folder",
                str(tmp_path),
                "--dataset_root",
                str(tmp_path / "data"),
                *tiny,
            ]
        )
        == 0
    )
    out = tmp_path / "avsl.png"
    assert explain(tmp_path, "--query", "3", "--top", "2", "--out", str(out)) == 0
    assert np.asarray(Image.open(out)).std() > 0
    record = json.loads(out.with_suffix(".json").read_text())
    for neighbour in record["neighbours"]:  # AVSL's attribution of its distance D is exact
        assert neighbour["exact"] and neighbour["similarity"] == -neighbour["distance"]
        assert neighbour["contribution_sum"] == pytest.approx(neighbour["distance"], rel=1e-5, abs=1e-6)
    assert explain(tmp_path, "--query", "3", "--ensemble") == 2


def test_the_report_explains_its_first_examples(trained):
    meta = trained / "tiny" / "meta"
    retrieval = json.loads((meta / "report.json").read_text())["retrieval"]
    explanations = retrieval["explanations"]  # eval_explanations: 2 by default
    first = retrieval["grids"][0]["queries"][:2]
    assert [item["query"]["index"] for item in explanations["items"]] == first
    for item in explanations["items"]:
        assert len(item["neighbours"]) == retrieval["top_k"] and item["exact"]
        for neighbour in item["neighbours"]:
            assert neighbour["contribution_sum"] == pytest.approx(neighbour["similarity"], abs=1e-5)
        Image.open(meta / "plots" / item["plot"]).verify()
    # the command explains the same query against the same neighbours
    query = first[0]
    assert explain(trained, "--query", str(query), "--top", str(retrieval["top_k"])) == 0
    record = json.loads((meta / "explain" / f"test_query{query}.json").read_text())
    assert [n["index"] for n in record["neighbours"]] == [
        n["index"] for n in explanations["items"][0]["neighbours"]
    ]


def test_eval_explanations_zero_draws_none_and_a_negative_count_is_refused(tmp_path, capsys):
    argv = ["--reproduce_results", str(EXP / "demo"), "--experiment_name", "none", "--root_experiment_folder"]
    argv += [str(tmp_path), "--dataset_root", str(tmp_path / "data"), *TINY]
    assert run_main([*argv, "--eval_explanations", "-1"]) == 2
    assert "eval_explanations" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "none").exists()
    assert run_main([*argv, "--eval_explanations", "0"]) == 0
    retrieval = json.loads((tmp_path / "none" / "meta" / "report.json").read_text())["retrieval"]
    assert "explanations" not in retrieval and retrieval["grids"]
    assert not list((tmp_path / "none" / "meta" / "plots").glob("explain_*"))
