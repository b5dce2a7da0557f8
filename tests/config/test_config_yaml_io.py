"""YAML reading/writing: float rule, errors with positions, round trips, atomic writes."""

import math
import os

import pytest

from dmlbench.config import yaml_io
from dmlbench.config.yaml_io import dump_yaml, load_yaml_file, parse_value, write_yaml_atomic
from dmlbench.errors import ConfigError


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_exponent_numbers_are_floats(tmp_path):
    path = write(tmp_path, "lr: 1e-6\nbig: 1E5\nneg: -3e-4\nplus: +2e3\ndot: .5e1\nplain: 1.5\ncount: 3\n")
    loaded = load_yaml_file(path)
    assert loaded == {
        "lr": 0.000001,
        "big": 100000.0,
        "neg": -0.0003,
        "plus": 2000.0,
        "dot": 5.0,
        "plain": 1.5,
        "count": 3,
    }
    assert type(loaded["lr"]) is float and type(loaded["big"]) is float
    assert type(loaded["count"]) is int


def test_quoted_exponent_stays_a_string(tmp_path):
    assert load_yaml_file(write(tmp_path, "a: '1e-6'\n")) == {"a": "1e-6"}


def test_only_true_false_are_booleans_and_no_dates_or_base60(tmp_path):
    text = "a: yes\nb: off\nc: true\nd: False\ne: 2020-01-01\nf: 1:30\ng: null\nh: ~\n"
    assert load_yaml_file(write(tmp_path, text)) == {
        "a": "yes",
        "b": "off",
        "c": True,
        "d": False,
        "e": "2020-01-01",
        "f": "1:30",
        "g": None,
        "h": None,
    }


def test_no_python_objects_ever(tmp_path):
    path = write(tmp_path, "a: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:1:"):
        load_yaml_file(path)


def test_empty_and_comment_only_files_are_empty_dicts(tmp_path):
    assert load_yaml_file(write(tmp_path, "")) == {}
    assert load_yaml_file(write(tmp_path, "# nothing here\n\n", "d.yaml")) == {}


def test_top_level_must_be_a_mapping(tmp_path):
    path = write(tmp_path, "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_yaml_file(path)


def test_malformed_yaml_reports_path_line_and_column(tmp_path):
    path = write(tmp_path, "a: 1\nb: 2\n  c: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    assert str(caught.value).startswith(f"{path}:3:4: mapping values are not allowed")


def test_duplicate_key_is_an_error_with_both_lines(tmp_path):
    path = write(tmp_path, "a: 1\nb: 2\na: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3:1:") and "duplicate key 'a'" in message and "line 1" in message


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml_file(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{MLRCSplitManager: {}}", {"MLRCSplitManager": {}}),
        ("[test]", ["test"]),
        ("null", None),
        ("1e-6", 0.000001),
        ("[default, with_cars196]", ["default", "with_cars196"]),
        ("true", True),
        ("64", 64),
        ("-3e-4", -0.0003),
        ("MultiSimilarityLoss", "MultiSimilarityLoss"),
        (
            "{metric_loss: {MultiSimilarityLoss: {alpha: 2}}}",
            {"metric_loss": {"MultiSimilarityLoss": {"alpha": 2}}},
        ),
        ("~DELETE~", "~DELETE~"),
    ],
)
def test_parse_value(text, expected):
    value = parse_value(text, "--flag")
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text", ["{a: [1, 2}", "{a: 1", "[1, 2", "   "])
def test_parse_value_malformed_names_the_flag(text):
    with pytest.raises(ConfigError) as caught:
        parse_value(text, "--loss_funcs")
    assert str(caught.value).startswith("--loss_funcs:") and "expected" in str(caught.value)


def test_parse_value_catches_missing_space_after_colon():
    with pytest.raises(ConfigError, match="--optimizers: 'lr:0.1'.*key: value"):
        parse_value("{lr:0.1}", "--optimizers")


def test_dump_keeps_insertion_order_and_block_style():
    text = dump_yaml({"zeta": 1, "alpha": {"inner_z": [1, 2], "inner_a": None}, "mid": "x"})
    assert text == "zeta: 1\nalpha:\n  inner_z:\n  - 1\n  - 2\n  inner_a: null\nmid: x\n"


def test_dump_round_trips_floats_and_tricky_strings(tmp_path):
    data = {
        "floats": [0.000001, 0.1 + 0.2, 1e300, -3e-4, 1.0, 5e-324, math.inf],
        "strings": ["1e-6", "yes", "1:30", "2020-01-01", "null", "true", "~DELETE~", "007"],
        "nested": {"b": 2, "a": 1},
    }
    path = write(tmp_path, dump_yaml(data))
    loaded = load_yaml_file(path)
    assert loaded == data
    assert [type(x) for x in loaded["floats"]] == [float] * 7
    assert all(type(s) is str for s in loaded["strings"])
    assert list(loaded["nested"]) == ["b", "a"]


def test_atomic_write_creates_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "config_general.yaml"
    write_yaml_atomic(target, {"a": 1, "lr": 1e-6})
    assert load_yaml_file(target) == {"a": 1, "lr": 1e-6}
    assert os.listdir(target.parent) == ["config_general.yaml"]
    write_yaml_atomic(target, {"b": 2})
    assert load_yaml_file(target) == {"b": 2}
    assert os.listdir(target.parent) == ["config_general.yaml"]


def test_serializer_crash_leaves_old_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "c.yaml"
    write_yaml_atomic(target, {"old": 1})
    before = target.read_bytes()

    def broken_dump(obj):
        raise RuntimeError("serializer died")

    monkeypatch.setattr(yaml_io, "dump_yaml", broken_dump)
    with pytest.raises(RuntimeError):
        write_yaml_atomic(target, {"new": 2})
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.yaml"]


def test_crash_during_disk_write_leaves_old_file_intact_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "c.yaml"
    write_yaml_atomic(target, {"old": 1})
    before = target.read_bytes()

    def failing_fsync(descriptor):
        raise OSError(5, "disk died")

    monkeypatch.setattr(yaml_io.os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        write_yaml_atomic(target, {"new": 2})
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.yaml"]


def test_unrepresentable_object_does_not_touch_the_file(tmp_path):
    target = tmp_path / "c.yaml"
    write_yaml_atomic(target, {"old": 1})
    with pytest.raises(Exception):  # noqa: B017 - whatever yaml raises
        write_yaml_atomic(target, {"new": object()})
    assert load_yaml_file(target) == {"old": 1}
    assert os.listdir(tmp_path) == ["c.yaml"]
