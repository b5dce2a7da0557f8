"""The tie rule: (score descending, reference index ascending), checked against a plain sort."""

import pytest
import torch

from dmlbench.evaluation.topk import merge_topk, topk_lowest_index_ties


def first_k_by_sorting(scores: torch.Tensor, k: int) -> list[list[int]]:
    rows = []
    for row in scores.tolist():
        rows.append(sorted(range(len(row)), key=lambda j: (-row[j], j))[:k])
    return rows


@pytest.mark.parametrize("k", [1, 2, 5, 9, 12])
@pytest.mark.parametrize("distinct_values", [2, 3, 50])
def test_topk_follows_tie_rule_on_heavily_tied_scores(k, distinct_values):
    generator = torch.Generator().manual_seed(k * 100 + distinct_values)
    scores = torch.randint(0, distinct_values, (40, 12), generator=generator).float()
    values, indices = topk_lowest_index_ties(scores, k)
    assert indices.tolist() == first_k_by_sorting(scores, k)
    assert torch.equal(values, scores.gather(1, indices))


def test_boundary_tie_takes_lowest_indices_not_topk_choice():
    # Six equal values; only three fit: they must be columns 0, 2, 3 after the larger column 1.
    scores = torch.tensor([[5.0, 9.0, 5.0, 5.0, 1.0, 5.0, 5.0, 5.0]])
    values, indices = topk_lowest_index_ties(scores, 4)
    assert indices.tolist() == [[1, 0, 2, 3]]
    assert values.tolist() == [[9.0, 5.0, 5.0, 5.0]]


def test_minus_infinity_entries_sort_last():
    scores = torch.tensor([[float("-inf"), 2.0, 2.0, 3.0]])
    _, indices = topk_lowest_index_ties(scores, 3)
    assert indices.tolist() == [[3, 1, 2]]


def test_merging_block_results_equals_one_pass():
    generator = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 4, (30, 25), generator=generator).float()
    k = 7
    parts = []
    for start in range(0, 25, 6):  # uneven blocks of references, some narrower than k
        values, indices = topk_lowest_index_ties(scores[:, start : start + 6], k)
        parts.append((values, indices + start))
    assert merge_topk(parts, k)[1].tolist() == first_k_by_sorting(scores, k)
    merged_in_steps = merge_topk([merge_topk(parts[:2], k), merge_topk(parts[2:], k)], k)
    assert merged_in_steps[1].tolist() == first_k_by_sorting(scores, k)
