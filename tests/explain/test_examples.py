"""The report's explanations from plain inputs: figures, records, and a skip (not a failure) for a
trunk the decomposition does not cover."""

from __future__ import annotations

import torch
from PIL import Image

from dmlbench.attribution.examples import explain_examples
from dmlbench.models.embedders import MLP, IdentityEmbedder
from dmlbench.models.multilevel import MultiLevelSmallConvNet
from dmlbench.models.small_cnn import SmallConvNet

NORMALIZATION = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


def test_figures_and_records_of_the_first_queries(tmp_path):
    torch.manual_seed(0)
    models = {
        "trunk": SmallConvNet(num_features=16, width=4, num_blocks=3).eval(),
        "embedder": MLP([8], input_size=16),
    }
    images = torch.rand(10, 3, 32, 32)
    with torch.no_grad():
        embeddings = models["embedder"](models["trunk"](images))
    labels = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    result = explain_examples(
        models, lambda i: images[i], NORMALIZATION, embeddings, labels, [4, 7], 3, tmp_path, "tiny"
    )
    assert [item["query"]["index"] for item in result["items"]] == [4, 7]
    for item in result["items"]:
        assert item["exact"] and len(item["neighbours"]) == 3
        query = item["query"]["index"]
        for neighbour in item["neighbours"]:
            cosine = torch.nn.functional.cosine_similarity(
                embeddings[query], embeddings[neighbour["index"]], dim=0
            )
            assert abs(neighbour["similarity"] - float(cosine)) < 1e-6
            assert abs(neighbour["contribution_sum"] - float(cosine)) < 1e-5
            assert neighbour["label"] == labels[neighbour["index"]]
        Image.open(tmp_path / item["plot"]).verify()


def test_a_multilevel_trunk_is_skipped_with_its_reason(tmp_path):
    models = {
        "trunk": MultiLevelSmallConvNet(width=4, num_blocks=2, num_levels=1),
        "embedder": IdentityEmbedder(8),
    }
    result = explain_examples(
        models,
        lambda i: torch.rand(3, 16, 16),
        NORMALIZATION,
        torch.rand(4, 8),
        [0, 1, 0, 1],
        [0],
        2,
        tmp_path,
        "t",
    )
    assert "has no spatial feature maps" in result["skipped"]
    assert not list(tmp_path.iterdir())
