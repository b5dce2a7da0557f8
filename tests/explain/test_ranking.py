"""The command ranks one query's neighbours as report.html ranks them."""

from __future__ import annotations

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
