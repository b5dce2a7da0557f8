"""The CSV export writes the record time as a readable timestamp (records.db keeps seconds)."""

import csv
import time
from datetime import datetime

from dmlbench.records.store import RecordStore


def test_csv_time_column_is_an_iso_timestamp_of_the_record_time(tmp_path) -> None:
    store = RecordStore(tmp_path / "meta")
    before = time.time()
    store.add_accuracies("fold0", "test", "trained", "fold", 3, {"MAP@R": 0.25})
    after = time.time()
    store.export_csv()
    with open(tmp_path / "meta" / "csv" / "accuracies.csv") as file:
        (row,) = list(csv.DictReader(file))
    stamp = datetime.fromisoformat(row["recorded_at"])
    assert stamp.tzinfo is not None and int(before) - 1 <= stamp.timestamp() <= after + 1
    assert float(row["value"]) == 0.25 and row["epoch"] == "3"
    assert store.accuracies()[0]["recorded_at"] >= int(before)  # the database keeps the number
