"""The command ranks one query's neighbours as report.html ranks them."""

from __future__ import annotations

import pytest
import torch

from dmlbench.attribution.ranking import rank_query
from dmlbench.records.retrieval_examples import nearest_neighbours


def test_one_query_ranked_like_the_report_with_ties_to_the_lower_index():
    torch.manual_seed(0)
    embeddings = torch.randn(40, 6)
    embeddings[[7, 21, 33]] = embeddings[3] * torch.tensor([[1.0], [2.0], [0.5]])  # same direction: tied
    for query in (3, 7, 0, 39):
        order, scores = rank_query(embeddings, query, 5)
        cosine = [
            float(torch.nn.functional.cosine_similarity(embeddings[query].double(), e.double(), dim=0))
            for e in embeddings
        ]
        naive = sorted((i for i in range(40) if i != query), key=lambda i: (-round(cosine[i], 12), i))[:5]
        assert order == naive
        assert max(abs(s - cosine[i]) for s, i in zip(scores, naive)) < 1e-12
        assert order == nearest_neighbours(embeddings, 5)[query].tolist()
    assert rank_query(embeddings, 3, 3)[0] == [7, 21, 33]


def test_a_query_ranked_against_the_gallery_alone():
    torch.manual_seed(1)
    embeddings = torch.randn(30, 4)
    embeddings[2] = embeddings[0] * 3.0  # another query, identical in direction: not a candidate
    for query in (0, 5, 9):
        order, scores = rank_query(embeddings, query, 4, gallery_start=10)
        cosine = torch.nn.functional.cosine_similarity(
            embeddings[query : query + 1].double(), embeddings.double()
        )
        naive = sorted(range(10, 30), key=lambda i: (-round(float(cosine[i]), 12), i))[:4]
        assert order == naive
        assert scores == pytest.approx([float(cosine[i]) for i in naive], abs=1e-12)
        assert order == nearest_neighbours(embeddings, 4, gallery_start=10)[query].tolist()
