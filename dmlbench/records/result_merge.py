"""Test results accumulated across commands: ``--evaluate`` on other splits, or without the
ensemble, adds to the report instead of replacing it.

Results are ``{split: {status: {"separated": ..., "concatenated": ...}}}``; their times are a
parallel tree ``{split: {status: {mode: ISO time}}}`` (``report.json``'s ``tested_at``). Merging
replaces exactly the (split, status, mode) entries that the new test produced, stamped with the
time it ran, and keeps every other entry with its own time.
"""

from __future__ import annotations

import copy
from typing import Any

from dmlbench.vocabulary import RESULT_MODES


def result_times(summary: dict[str, Any], when: str) -> dict[str, Any]:
    """``{split: {status: {mode: when}}}`` for every mode present in ``summary``."""
    return {
        split: {
            status: {mode: when for mode in RESULT_MODES if mode in entry}
            for status, entry in by_status.items()
        }
        for split, by_status in summary.items()
    }


def merge_results(
    previous: dict[str, Any] | None, previous_times: dict[str, Any] | None, summary: dict[str, Any], when: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results, times): ``previous`` with each (split, status, mode) of ``summary`` replaced by the
    new value stamped ``when``; entries absent from ``summary`` keep their values and times."""
    merged = copy.deepcopy(previous) if isinstance(previous, dict) else {}
    times = copy.deepcopy(previous_times) if isinstance(previous_times, dict) else {}
    for split, by_status in summary.items():
        for status, entry in by_status.items():
            target = merged.setdefault(split, {}).setdefault(status, {})
            stamps = times.setdefault(split, {}).setdefault(status, {})
            for mode in RESULT_MODES:
                if mode in entry:
                    target[mode] = copy.deepcopy(entry[mode])
                    stamps[mode] = when
    return merged, times
