"""DAS against its definition: the naive reference (das_reference.NaiveDAS, loops in float64)
over several batches, hand-worked bank and scaling examples, and the edge cases."""

from __future__ import annotations

import math

import pytest
import torch
from das_reference import NaiveDAS, top_k, unit

from dmlbench.errors import ConfigError
from dmlbench.plugins.das import DAS, DASState
from dmlbench.plugins.das import functional as das
from dmlbench.training.plugins import LossInputs

C, D, K, S = 5, 12, 3, 4


def batches(
    schedule: list[list[int]], seed: int = 0, dim: int = D
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One batch per entry of ``schedule`` (the labels), with seeded random embeddings."""
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(len(labels), dim, generator=generator), torch.tensor(labels)) for labels in schedule]


#: classes with 2, 1 (no difference), 3 (6 differences > bank 4: overflow) and absent classes,
#: varying from batch to batch (small pushes after overflows, wrap-around).
SCHEDULE = [
    [0, 0, 1, 2, 2, 2],
    [3, 0, 3, 0, 4],
    [2, 2, 1, 1, 0, 0],
    [4, 4, 2, 0, 0, 0],
    [1, 3, 3, 2, 2, 4],
    [0, 1, 0, 1, 2, 2],
]


@pytest.mark.parametrize("scale_range, mts_scale", [((0.99, 1.01), 0.01), ((0.5, 2.0), 0.1)])
def test_produced_anchors_match_the_definition_over_several_batches(scale_range, mts_scale):
    plugin = DAS(
        num_classes=C,
        embedding_size=D,
        dfs_num_scale=K,
        dfs_scale_range=list(scale_range),
        mts_scale=mts_scale,
        bank_size=S,
        num_produce=3,
        detach=True,
        seed=7,
    )
    reference = NaiveDAS(C, D, K, S, scale_range, mts_scale, num_produce=3, seed=7)
    for embeddings, labels in batches(SCHEDULE):
        out = plugin.loss_inputs(LossInputs(embeddings, labels), context=None)
        expected = reference.step(embeddings, labels)
        n = len(labels)
        assert torch.equal(out.embeddings[:n], embeddings)  # the originals come first, unchanged
        assert torch.equal(out.labels, labels.repeat(4))
        for copy in range(3):
            produced = out.embeddings[n * (copy + 1) : n * (copy + 2)].double()
            assert torch.allclose(produced, torch.tensor(expected[copy], dtype=torch.float64), atol=1e-6)
        assert plugin.state.frequency.tolist() == reference.count
        for label in range(C):
            assert int(plugin.state.filled[label]) == reference.filled[label]
            stored = plugin.state.banks[label, : reference.filled[label]].double()
            wanted = torch.tensor(reference.slots[label][: reference.filled[label]], dtype=torch.float64)
            assert torch.allclose(stored, wanted.reshape(stored.shape), atol=1e-6)


def test_which_dimensions_are_scaled_and_by_what():
    """mts 0, no normalisation: produced / original is the drawn factor on the class's K most frequent
    dimensions and exactly 1 elsewhere."""
    plugin = DAS(
        num_classes=C,
        embedding_size=D,
        dfs_num_scale=K,
        dfs_scale_range=[0.5, 2.0],
        mts_scale=0.0,
        bank_size=S,
        num_produce=2,
        normalize=False,
        seed=3,
    )
    reference = NaiveDAS(C, D, K, S, (0.5, 2.0), 0.0, num_produce=2, seed=3, normalize=False)
    for embeddings, labels in batches(SCHEDULE[:3], seed=1):
        out = plugin.loss_inputs(LossInputs(embeddings, labels), context=None)
        reference.step(embeddings, labels)
        n = len(labels)
        for copy in range(2):
            ratio = (out.embeddings[n * (copy + 1) : n * (copy + 2)] / embeddings).double()
            for i in range(n):
                dims = reference.last_dimensions[i]
                counts = reference.count[int(labels[i])]
                assert min(counts[j] for j in dims) >= max(c for j, c in enumerate(counts) if j not in dims)
                for j in range(D):
                    factor = reference.last_scales[copy][i][dims.index(j)] if j in dims else 1.0
                    assert ratio[i, j].item() == pytest.approx(factor, abs=1e-6)
                    if j in dims:
                        assert 0.5 <= factor < 2.0


def test_the_most_frequent_dimensions_are_chosen_ties_to_the_lower_index():
    frequency = torch.tensor([[0, 5, 2, 5, 1, 2], [3, 3, 3, 3, 0, 9]])
    assert das.top_k_dimensions(frequency, 3).tolist() == [[1, 3, 2], [5, 0, 1]]
    assert top_k([0, 5, 2, 5, 1, 2], 3) == [1, 3, 2]


def test_frequency_update_counts_each_samples_top_k_dimensions():
    embeddings = torch.tensor([[0.1, 0.9, 0.5, -1.0], [0.7, 0.2, 0.6, 0.0], [0.3, 0.8, 0.1, 0.2]])
    labels = torch.tensor([1, 1, 0])
    updated = das.update_frequency(torch.zeros(2, 4, dtype=torch.int64), embeddings, labels, k=2)
    assert updated.tolist() == [
        [1, 1, 0, 0],
        [1, 1, 2, 0],
    ]  # rows: class 0 = sample 3; class 1 = samples 1, 2


def test_hand_worked_fifo_bank():
    """Bank of 4, pushes of 3, 3, then 5 (more than the bank), then 1."""
    rows = [torch.full((1, 2), float(v)) for v in range(1, 13)]
    bank, pointer, filled = torch.zeros(4, 2), 0, 0
    bank, pointer, filled = das.push_fifo(bank, pointer, filled, torch.cat(rows[0:3]))
    assert bank[:, 0].tolist() == [1, 2, 3, 0] and (pointer, filled) == (3, 3)
    bank, pointer, filled = das.push_fifo(bank, pointer, filled, torch.cat(rows[3:6]))
    assert bank[:, 0].tolist() == [5, 6, 3, 4] and (pointer, filled) == (2, 4)  # 1 and 2 were the oldest
    bank, pointer, filled = das.push_fifo(bank, pointer, filled, torch.cat(rows[6:11]))
    assert bank[:, 0].tolist() == [8, 9, 10, 11] and (pointer, filled) == (0, 4)
    bank, pointer, filled = das.push_fifo(bank, pointer, filled, rows[11])
    assert bank[:, 0].tolist() == [12, 9, 10, 11] and (pointer, filled) == (1, 4)


def test_bank_entry_is_slot_floor_u_times_filled():
    banks = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    filled = torch.tensor([3, 0])
    shift = das.bank_entries(banks, filled, torch.tensor([0, 0, 0, 1]), torch.tensor([0.0, 0.34, 0.999, 0.5]))
    assert shift.tolist() == [[0, 1], [2, 3], [4, 5], [0, 0]]  # slots 0, 1, 2; empty bank: no shift


def test_first_batch_single_sample_class_has_an_empty_bank_and_no_shift():
    plugin = DAS(
        num_classes=3,
        embedding_size=4,
        dfs_num_scale=2,
        dfs_scale_range=[1.0, 1.0],
        mts_scale=0.5,
        bank_size=5,
        num_produce=1,
        seed=0,
    )
    embeddings = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, 1.0], [2.0, 0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    out = plugin.loss_inputs(LossInputs(embeddings, labels), context=None)
    assert plugin.state.filled.tolist() == [0, 2, 0]  # class 0 alone: nothing to store
    produced = out.embeddings[3:]
    assert torch.allclose(
        produced[0], torch.tensor(unit([1.0, 2.0, 3.0, 4.0])).float()
    )  # factors 1, no shift
    a, b = unit([0.0, 1.0, 0.0, 1.0]), unit([2.0, 0.0, 1.0, 0.0])
    stored = plugin.state.banks[1, :2].double()
    wanted = torch.tensor([[x - y for x, y in zip(a, b)], [y - x for x, y in zip(a, b)]], dtype=torch.float64)
    assert torch.allclose(stored, wanted, atol=1e-6)
    # the class's first batch already sees its own differences: the produced anchor is shifted
    assert not torch.allclose(produced[1], torch.tensor(a).float())


def test_banks_never_hold_a_sample_with_itself_and_stay_bounded():
    """Every stored entry is e_a - e_b of two different same-class samples of a batch seen so far
    (a duplicate image gives a zero difference, which is not stored); memory never grows."""
    state = DASState(num_classes=3, dim=6, bank_size=5, seed=0)
    generator = torch.Generator().manual_seed(0)
    shapes = (tuple(state.frequency.shape), tuple(state.banks.shape))
    valid: dict[int, list[torch.Tensor]] = {0: [], 1: [], 2: []}
    for _ in range(40):
        labels = torch.randint(0, 3, (7,), generator=generator)
        embeddings = torch.nn.functional.normalize(torch.randn(7, 6, generator=generator), dim=1)
        embeddings[1], labels[1] = embeddings[0], labels[0]  # a duplicate sample
        state.observe(embeddings, labels, k=2)
        for a in range(7):
            for b in range(7):
                if labels[a] == labels[b] and not torch.equal(embeddings[a], embeddings[b]):
                    valid[int(labels[a])].append(embeddings[a] - embeddings[b])
        for label in range(3):
            filled = int(state.filled[label])
            assert filled <= 5
            for entry in state.banks[label, :filled]:
                assert entry.abs().sum() > 0
                assert any(torch.equal(entry, difference) for difference in valid[label])
    assert (tuple(state.frequency.shape), tuple(state.banks.shape)) == shapes
    assert int(state.filled.min()) == 5


def test_detach_controls_the_gradient_of_the_produced_anchors():
    embeddings, labels = batches([[0, 0, 1, 1]])[0]
    for detach in (True, False):
        plugin = DAS(num_classes=2, embedding_size=D, dfs_num_scale=K, bank_size=S, detach=detach, seed=0)
        leaf = embeddings.clone().requires_grad_(True)
        out = plugin.loss_inputs(LossInputs(leaf, labels), context=None)
        out.embeddings[4:].sum().backward()
        assert (leaf.grad is not None and leaf.grad.abs().sum() > 0) == (not detach)


def test_k_larger_than_the_dimension_is_a_clear_error():
    with pytest.raises(ConfigError, match="dfs_num_scale: K = 9 is larger than the embedding size 8"):
        DAS(num_classes=3, embedding_size=8, dfs_num_scale=9)
    plugin = DAS(num_classes=3, dfs_num_scale=9)  # size only known at the first batch
    with pytest.raises(ConfigError, match="larger than the embedding size 4"):
        plugin.loss_inputs(LossInputs(torch.randn(2, 4), torch.tensor([0, 0])), context=None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dfs_num_scale": 0}, "dfs_num_scale: expected a whole number >= 1"),
        ({"dfs_scale_range": [2.0, 1.0]}, "expected low <= high"),
        ({"dfs_scale_range": 1.0}, "expected \\[low, high\\]"),
        ({"bank_size": 0}, "bank_size"),
        ({"num_produce": 1.5}, "num_produce"),
        ({"detach": "yes"}, "detach: expected true or false"),
        ({"original_loss_weight": -1}, "original_loss_weight"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message) as error:
        DAS(num_classes=3, embedding_size=8, **kwargs)
    assert "\n" not in str(error.value)


def test_labels_outside_the_training_classes_are_refused():
    plugin = DAS(num_classes=2, embedding_size=4, dfs_num_scale=2)
    with pytest.raises(ValueError, match="labels must be training labels 0..1"):
        plugin.loss_inputs(LossInputs(torch.randn(2, 4), torch.tensor([0, 5])), context=None)


def test_state_round_trip_continues_exactly():
    """A plugin restored from another's state_dict produces what the first produces next."""
    data = batches(SCHEDULE, seed=4)
    first = DAS(num_classes=C, embedding_size=D, dfs_num_scale=K, bank_size=S, seed=11)
    for embeddings, labels in data[:3]:
        first.loss_inputs(LossInputs(embeddings, labels), context=None)
    second = DAS(num_classes=C, embedding_size=D, dfs_num_scale=K, bank_size=S, seed=99)
    second.load_state_dict(first.state_dict())
    for embeddings, labels in data[3:]:
        a = first.loss_inputs(LossInputs(embeddings, labels), context=None).embeddings
        b = second.loss_inputs(LossInputs(embeddings, labels), context=None).embeddings
        assert torch.equal(a, b)
    assert not math.isnan(float(a.sum()))
