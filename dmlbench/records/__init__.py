"""Records (SQLite, CSV, TensorBoard), reports and plots."""

from dmlbench.records.run_report import results_table, summarize_test_results, write_report
from dmlbench.records.store import RecordStore
from dmlbench.records.summary import confidence_interval, mean_and_sem

__all__ = [
    "RecordStore",
    "confidence_interval",
    "mean_and_sem",
    "results_table",
    "summarize_test_results",
    "write_report",
]
