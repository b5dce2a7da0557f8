"""`python -m dmlbench.data check`: the per-split table, bad images listed by path, exit codes."""

from __future__ import annotations

from dmlbench.data.__main__ import main
from dmlbench.data.check import SplitSummary, find_bad_images, format_summary, image_problem, summarize
from dmlbench.data.cub import CUB200
from dmlbench.data.inshop import InShop


def test_summary_counts_images_and_classes_per_split(cub_tree):
    rows = summarize(CUB200(cub_tree[0]))
    # fixture: classes 1 (2 images), 2 (3), 100 (1) train; 101 (1), 150 (2) test
    assert [(r.split, r.images, r.classes) for r in rows] == [("train", 6, 3), ("test", 3, 2), ("all", 9, 5)]
    assert rows[0].published == (5864, 100) and not rows[0].matches_published


def test_summary_keeps_the_inshop_split_order(inshop_tree):
    rows = summarize(InShop(inshop_tree))
    # rows of the fixture: train x2 (item 2), query, gallery (item 80), train (item 1), query, gallery (item 79)
    assert [(r.split, r.images, r.classes) for r in rows] == [
        ("train", 3, 2),
        ("query", 2, 2),
        ("gallery", 2, 2),
        ("all", 7, 4),
    ]


def test_table_marks_differences_from_the_published_sizes():
    text = format_summary(
        [SplitSummary("train", 5864, 100, (5864, 100)), SplitSummary("test", 3, 2, (5924, 100))]
    )
    lines = text.splitlines()
    assert lines[1].split() == ["train", "5864", "100", "5864", "/", "100"]
    assert lines[2].split() == ["test", "3", "2", "5924", "/", "100", "(differs)"]


def test_image_problem_distinguishes_missing_and_corrupt(tmp_path, cub_tree):
    root, class_of = cub_tree
    good = root / "CUB_200_2011" / "images" / next(iter(class_of))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff garbage, not a JPEG")
    assert image_problem(str(good)) is None
    assert image_problem(str(tmp_path / "absent.jpg")) == "missing"
    assert image_problem(str(corrupt)).startswith("unreadable (")


def test_truncated_image_is_caught_by_full_decode(tmp_path, cub_tree):
    root, class_of = cub_tree
    good = (root / "CUB_200_2011" / "images" / next(iter(class_of))).read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good[: len(good) // 2])
    bad = find_bad_images([str(truncated)], full_decode=True, progress=False)
    assert [path for path, _ in bad] == [str(truncated)]


def test_check_command_on_a_good_tree(cub_tree, capsys):
    root, _ = cub_tree
    # the fixture is a 9-image subset of CUB: counts differ from the published ones
    assert main(["check", "CUB200", "--root", str(root), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train, test counts differ" in err and "--allow-subset" in err
    assert main(["check", "CUB200", "--root", str(root), "--no-progress", "--allow-subset"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "all 9 images open" in out
    table = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[2:5]}
    assert table == {"train": ["6", "3"], "test": ["3", "2"], "all": ["9", "5"]}


def test_check_command_lists_bad_files_and_exits_1(cub_tree, capsys):
    root, class_of = cub_tree
    images = root / "CUB_200_2011" / "images"
    relatives = sorted(class_of)
    missing, corrupt = images / relatives[0], images / relatives[1]
    missing.unlink()
    corrupt.write_bytes(b"not an image")
    assert main(["check", "CUB200", "--root", str(root), "--no-progress", "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "2 of 9 images are missing or unreadable:" in out
    assert f"  {missing}: missing" in out
    assert f"  {corrupt}: unreadable (" in out


def test_check_command_usage_and_tree_errors(tmp_path, capsys):
    assert main(["check", "CUB2OO", "--root", str(tmp_path)]) == 2
    assert main(["check", "CSVDataset", "--root", str(tmp_path), "--option", "no_equals_sign"]) == 2
    assert main(["check", "CSVDataset", "--root", str(tmp_path), "--option", "csvfile=x.csv"]) == 2
    assert main(["check"]) == 2
    assert main(["check", "CUB200", "--root", str(tmp_path)]) == 1  # no tree: a data problem
    err = capsys.readouterr().err
    assert "--option csvfile: CSVDataset has no such option (did you mean csv_file?)" in err
    assert "CUB200: " in err and "images.txt not found" in err


def test_option_values_parse_like_run_py_values(tmp_path, capsys):
    """--option values follow run.py's YAML rules, alias bound included (a 'billion laughs'
    document is refused before it is expanded) and 'key:value' without a space is named."""
    bomb = "[&a [x, x, x, x, x, x, x, x, x, x], &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]"
    bomb += "".join(
        f", &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]"
        for p, c in zip("bcdef", "cdefg")
    )
    for value, message in [
        (bomb + "]", "aliases (*name) expand to"),
        ("{a:1}", "looks like 'key:value' without a space"),
        ("", "empty value"),
    ]:
        assert main(["check", "CSVDataset", "--root", str(tmp_path), "--option", f"csv_file={value}"]) == 2
        assert message in capsys.readouterr().err


def test_check_passes_options_to_the_constructor(tmp_path, capsys):
    from dataset_trees import write_image

    write_image(tmp_path / "img" / "a.jpg")
    (tmp_path / "mine.csv").write_text("path,label,split\nimg/a.jpg,3,test\n")
    assert (
        main(
            ["check", "CSVDataset", "--root", str(tmp_path), "--option", "csv_file=mine.csv", "--no-progress"]
        )
        == 0
    )  # no published sizes
    assert "all 1 images open" in capsys.readouterr().out
