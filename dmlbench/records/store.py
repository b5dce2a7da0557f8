"""Experiment records in SQLite (``meta/records.db``), exported to CSV.

Two long-format tables, one row per number, so that any metric or status can be added without
changing a schema:

- ``accuracies(scheme, split, trained_status, mode, epoch, metric, value)``: validation during
  training (mode ``fold``) and final tests (mode ``fold``, ``separated`` mean, ``separated_sem``,
  ``concatenated``);
- ``training(scheme, epoch, step, name, value)``: losses logged during training.
"""

from __future__ import annotations

import csv
import sqlite3
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from dmlbench.fileio import atomic_write
from dmlbench.integrity import corrupt

SCHEMA = """
CREATE TABLE IF NOT EXISTS accuracies (
    scheme TEXT NOT NULL, split TEXT NOT NULL, trained_status TEXT NOT NULL, mode TEXT NOT NULL,
    epoch INTEGER NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, recorded_at REAL NOT NULL,
    PRIMARY KEY (scheme, split, trained_status, mode, epoch, metric)
);
CREATE TABLE IF NOT EXISTS training (
    scheme TEXT NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (scheme, step, name)
);
"""


class RecordStore:
    """SQLite records of one experiment. Writes are transactions (a kill loses at most the row
    being written); re-recording the same key replaces the old value (resume-safe)."""

    def __init__(self, meta_dir: str | Path) -> None:
        self.meta_dir = Path(meta_dir)
        self.meta_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.meta_dir / "records.db"
        try:
            with self._connect() as connection:
                connection.executescript(SCHEMA)
                problems = [
                    row[0] for row in connection.execute("PRAGMA quick_check").fetchall() if row[0] != "ok"
                ]
            if problems:
                raise sqlite3.DatabaseError("; ".join(problems[:2]))
        except sqlite3.DatabaseError as error:
            raise corrupt(
                self.path,
                f"{error}",
                "move it aside (e.g. to records.db.bad) and rerun: tests are recorded "
                "again (--evaluate recomputes them), the training curves stay in TensorBoard",
            ) from None

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    def add_accuracies(
        self, scheme: str, split: str, trained_status: str, mode: str, epoch: int, metrics: dict[str, float]
    ) -> None:
        now = time.time()
        rows = [
            (scheme, split, trained_status, mode, int(epoch), m, float(v), now) for m, v in metrics.items()
        ]
        with self._connect() as connection:
            connection.executemany("INSERT OR REPLACE INTO accuracies VALUES (?,?,?,?,?,?,?,?)", rows)

    def add_training_values(self, scheme: str, step: int, values: dict[str, float]) -> None:
        rows = [(scheme, int(step), name, float(value)) for name, value in values.items()]
        with self._connect() as connection:
            connection.executemany("INSERT OR REPLACE INTO training VALUES (?,?,?,?)", rows)

    def accuracies(self, **where: Any) -> list[dict[str, Any]]:
        """Rows of ``accuracies`` matching ``column=value`` filters, in insertion order."""
        clause = " AND ".join(f"{column} = ?" for column in where) or "1"
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(
                f"SELECT * FROM accuracies WHERE {clause} ORDER BY rowid", tuple(where.values())
            )
            return [dict(row) for row in rows]

    def training_values(self) -> list[dict[str, Any]]:
        """Rows of ``training`` (scheme, step, name, value), ordered by scheme and step."""
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM training ORDER BY scheme, step")
            return [dict(row) for row in rows]

    def export_csv(self) -> list[Path]:
        """One CSV per table under ``meta/csv/``, each written atomically."""
        out_dir = self.meta_dir / "csv"
        out_dir.mkdir(exist_ok=True)
        written = []
        with self._connect() as connection:
            for table in ("accuracies", "training"):
                cursor = connection.execute(f"SELECT * FROM {table} ORDER BY rowid")
                header = [column[0] for column in cursor.description]
                path = out_dir / f"{table}.csv"
                write_csv_atomic(path, header, readable_times(header, cursor))
                written.append(path)
        return written


def readable_times(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterable[list[Any]]:
    """Rows with the ``recorded_at`` column (seconds since the epoch in records.db) as a local ISO 8601
    timestamp with its UTC offset, e.g. ``2026-11-28T09:50:12+00:00``."""
    column = header.index("recorded_at") if "recorded_at" in header else None
    for row in rows:
        row = list(row)
        if column is not None and isinstance(row[column], (int, float)):
            row[column] = datetime.fromtimestamp(row[column]).astimezone().isoformat(timespec="seconds")
        yield row


def write_csv_atomic(path: Path, header: list[str], rows: Iterable[Iterable[Any]]) -> None:
    with atomic_write(path, "w") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
