"""Any data set described by a CSV file: no code needed for a custom collection.

The file (``root/<csv_file>``, or ``root`` itself when it is a file) has a header row with the
columns ``path`` and ``label``, optionally ``split`` and ``super_label`` (other columns are
ignored)::

    path,label,split,super_label
    birds/0001.jpg,12,train,1
    birds/0002.jpg,12,test,1

Relative paths are taken from ``image_root`` (default: the CSV file's folder). Labels and
super-labels that are all integers are kept as they are; otherwise the distinct values in sorted
order are mapped to 0, 1, 2, ... and kept in ``class_names`` / ``super_class_names``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from dmlbench.data.base import RetrievalDataset
from dmlbench.errors import DatasetError
from dmlbench.registry import register

REQUIRED_COLUMNS = ("path", "label")
OPTIONAL_COLUMNS = ("split", "super_label")


def _as_labels(values: list[str]) -> tuple[list[int], list[str] | None]:
    """Integers when every value is one, else sorted distinct values mapped to 0..n-1."""
    try:
        return [int(v) for v in values], None
    except ValueError:
        names = sorted(set(values))
        index = {name: i for i, name in enumerate(names)}
        return [index[v] for v in values], names


@register("dataset", "CSVDataset")
class CSVDataset(RetrievalDataset):
    """Samples listed in a CSV file with columns path,label[,split][,super_label]."""

    registry_name = "CSVDataset"

    def __init__(
        self,
        root: str | Path,
        transform: Callable[[Image.Image], Any] | None = None,
        download: bool = False,
        csv_file: str = "dataset.csv",
        image_root: str | None = None,
    ) -> None:
        super().__init__(transform)
        root = Path(root).expanduser()
        csv_path = root if root.is_file() else root / csv_file
        if not csv_path.is_file():
            nothing = " (CSVDataset reads your own files; there is nothing to download)" if download else ""
            raise DatasetError(
                f"CSVDataset: {csv_path} not found{nothing}; pass --dataset_root and csv_file so "
                f"that they name a CSV with columns {','.join(REQUIRED_COLUMNS)}[,split][,super_label]"
            )
        self.csv_path = csv_path
        self.image_root = csv_path.parent if image_root is None else (csv_path.parent / image_root)
        columns = self._read_columns(csv_path)

        base = str(self.image_root)
        paths = [p if os.path.isabs(p) else os.path.join(base, p) for p in columns["path"]]
        labels, self.class_names = _as_labels(columns["label"])
        super_labels = None
        self.super_class_names: list[str] | None = None
        if "super_label" in columns:
            super_labels, self.super_class_names = _as_labels(columns["super_label"])
        self._set_samples(paths, labels, super_labels=super_labels, official_split=columns.get("split"))

    @staticmethod
    def _read_columns(csv_path: Path) -> dict[str, list[str]]:
        with open(csv_path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in REQUIRED_COLUMNS if name not in header]
            if missing:
                raise DatasetError(
                    f"CSVDataset: {csv_path} header {','.join(header) or '(empty)'} lacks the "
                    f"column {missing[0]!r}; expected {','.join(REQUIRED_COLUMNS)}[,split][,super_label]"
                )
            wanted = [name for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in header]
            position = {name: header.index(name) for name in wanted}
            columns: dict[str, list[str]] = {name: [] for name in wanted}
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                line = reader.line_num
                if len(row) < len(header):
                    raise DatasetError(
                        f"CSVDataset: {csv_path} line {line} has {len(row)} columns, the header {len(header)}"
                    )
                for name, index in position.items():
                    value = row[index].strip()
                    if not value:
                        raise DatasetError(f"CSVDataset: {csv_path} line {line}: empty {name!r}")
                    columns[name].append(value)
        if not columns["path"]:
            raise DatasetError(f"CSVDataset: {csv_path} lists no samples")
        return columns
