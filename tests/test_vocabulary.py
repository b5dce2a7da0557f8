"""The shared vocabulary: statuses in report order, whatever order they come in."""

from dmlbench.vocabulary import RESULT_MODES, TRAINED_STATUSES, ordered_statuses


def test_statuses_come_in_report_order_then_unknown_ones_as_given():
    given = ["trained", "custom_b", "untrained_trunk_and_embedder", "custom_a", "untrained_trunk"]
    assert ordered_statuses(given) == [
        "untrained_trunk",
        "untrained_trunk_and_embedder",
        "trained",
        "custom_b",
        "custom_a",
    ]
    assert ordered_statuses({"trained": {}}) == ["trained"]  # a dict's keys, as the report tables pass


def test_the_report_order_is_the_protocols():
    # docs/protocol.md: untrained trunk, untrained trunk + embedder, trained; separated before concatenated
    assert TRAINED_STATUSES == ("untrained_trunk", "untrained_trunk_and_embedder", "trained")
    assert RESULT_MODES == ("separated", "concatenated")
