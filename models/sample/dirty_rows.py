"""Dirty rows of every kind seen in the real files, injected into the sample at a known rate.

Each kind takes its own rows (never overlapping another kind), so the number of rows that
preprocessing must quarantine for each reason, or keep with a null, is known exactly and written
to the sample's manifest.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from models.data.eras import Era
from models.sample.trips import format_times

RATE = 0.005  # share of a file's rows per dirty kind
BLANK_LINES = 2
# kind -> the quarantine reason it must produce (None: the row is kept)
EXPECTED_REASON = {
    "missing_trip_id": "missing_trip_id",
    "bad_trip_id": "bad_trip_id",
    "duplicate_trip_id": "duplicate_trip_id",
    "missing_end_time": "missing_end_time",
    "missing_end_time_double": "missing_end_time",
    "missing_station_id": "missing_station_id",
    "bad_station_id": "bad_station_id",
    "missing_station": "missing_station",
    "nonpositive_duration": "nonpositive_duration",
    "too_long": "too_long",
    "end_before_start": "end_before_start",
    "too_short": "too_short",
    "unknown_user_type": "unknown_user_type:Unknown",
    "field_count": "field_count",
    "null_station_name": None,
    "null_bike_id": None,
    "messy_names": None,
    "trailing_commas": None,
    "other_month": None,
}
# kind -> (column, the value that spoils it)
SETTERS: dict[str, tuple[str, str]] = {
    "missing_trip_id": ("trip_id", ""),
    "missing_end_time": ("end_time", "NULL"),
    "missing_end_time_double": ("end_time", "NULLNULL"),
    "missing_station_id": ("start_station_id", "NULL"),
    "bad_station_id": ("end_station_id", "70A1"),
    "missing_station": ("start_station_name", "NULL"),
    "nonpositive_duration": ("duration_s", "0"),
    "too_long": ("duration_s", "90061"),
    "unknown_user_type": ("user_type", "Unknown"),
    "null_station_name": ("start_station_name", "NULL"),
    "null_bike_id": ("bike_id", ""),
}

KEPT_WITH_NULL = {"null_station_name": "station_name", "null_bike_id": "bike_id"}


def join_rows(columns: dict[str, np.ndarray], era: Era) -> list[str]:
    """CSV lines in the era's column order (no quoting: the sample's values hold no commas)."""
    ordered = [columns[era.columns[name]] for name in era.header]
    joined = ordered[0]
    for column in ordered[1:]:
        joined = joined + "," + column
    return list(joined)


def apply_kind(
    kind: str, rows: np.ndarray, trips: pd.DataFrame, cols: dict[str, np.ndarray], style: str
) -> None:
    """Spoil (or oddly format) the given rows' string values in place, as the real files do."""
    if kind in SETTERS:
        column, value = SETTERS[kind]
        cols[column][rows] = value
    elif kind == "bad_trip_id":
        cols["trip_id"][rows] = cols["trip_id"][rows] + "x"
    elif kind == "end_before_start":
        earlier = trips["start"].iloc[rows] - timedelta(hours=2)
        cols["end_time"][rows] = format_times(earlier, style).to_numpy(object)
    elif kind == "too_short":  # a re-dock: 2 s back to the same station
        cols["duration_s"][rows] = "2"
        for part in ("station_id", "station_name"):
            cols[f"end_{part}"][rows] = cols[f"start_{part}"][rows]
        cols["end_time"][rows] = cols["start_time"][rows]
    elif kind == "messy_names":
        cols["start_station_name"][rows] = (
            np.char.replace(cols["start_station_name"][rows].astype(str), " / ", "  / ") + " "
        )
    elif kind == "other_month":  # a trip from the next January in a December file
        start = pd.Series([pd.Timestamp(trips["start"].iloc[0].year + 1, 1, 2, 10, 5)] * len(rows))
        cols["start_time"][rows] = format_times(start, style).to_numpy(object)
        cols["end_time"][rows] = format_times(start + timedelta(minutes=15), style).to_numpy(object)
        cols["duration_s"][rows] = "900"


def kind_sizes(kinds: tuple[str, ...], size: int) -> dict[str, int]:
    """Rows per dirty kind: ``RATE`` of the file (at least one); a single row for ``other_month``."""
    per_kind = max(1, round(RATE * size))
    return {kind: 1 if kind == "other_month" else per_kind for kind in kinds if kind != "blank_lines"}


def inject_dirty(
    rng: np.random.Generator, trips: pd.DataFrame, cols: dict[str, np.ndarray], spec: Any, era: Era
) -> tuple[list[str], dict[str, Any]]:
    """The file's data lines with its dirty kinds injected, and the exact counts of what was done."""
    sizes = kind_sizes(spec.dirty, len(trips))
    order = rng.permutation(len(trips))
    reasons: Counter = Counter()
    kept_nulls: Counter = Counter()
    picked: dict[str, np.ndarray] = {}
    start = 0
    for kind, count in sizes.items():
        picked[kind] = np.sort(order[start : start + count])
        start += count
        if kind == "duplicate_trip_id":  # copy the ids of as many clean rows, which stay kept
            cols["trip_id"][picked[kind]] = cols["trip_id"][np.sort(order[start : start + count])]
            start += count
        else:
            apply_kind(kind, picked[kind], trips, cols, spec.style)
        if EXPECTED_REASON[kind]:
            reasons[EXPECTED_REASON[kind]] += count
        if kind in KEPT_WITH_NULL:
            kept_nulls[KEPT_WITH_NULL[kind]] += count
    lines = join_rows(cols, era)
    for row in picked.get("field_count", []):  # trip id and duration run together: one field short
        fields = lines[row].split(",")
        lines[row] = ",".join([fields[0] + fields[1], *fields[2:]])
    for row in picked.get("trailing_commas", []):
        lines[row] += ",,"
    counts = {
        "rows": len(lines),
        "reasons": dict(sorted(reasons.items())),
        "kept_with_nulls": dict(sorted(kept_nulls.items())),
        "blank_lines": BLANK_LINES if "blank_lines" in spec.dirty else 0,
        "repaired_rows": int(sizes.get("trailing_commas", 0)),
        "kinds": {kind: int(count) for kind, count in sizes.items()},
    }
    return lines, counts
