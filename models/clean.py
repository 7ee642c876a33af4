"""Turning one batch of raw string columns into canonical trips plus a quarantine reason per row.

Everything here is vectorised pyarrow compute over whole columns: values are trimmed, the
literals ``NULL``/``NULLNULL`` and empty strings become nulls, integers and times are parsed, and
each row gets the first reason (in the order of the checks below) that stops it from being a
usable trip, or null when it is kept. A NULL station *name* next to a valid id, or an empty bike
id, leaves a usable trip: it is kept with a null and counted, not quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.dedupe import SeenIds
from models.features import CANONICAL_COLUMNS
from models.schema import LABELS, Era
from models.timeparse import UNIT, parse_times

NULL_TOKENS = pa.array(["", "NULL", "NULLNULL"])
UNSIGNED = r"^\d{1,18}$"
SIGNED = r"^-?\d{1,18}$"
MAX_DURATION_S = 24 * 3600
MEMBER_SPELLINGS = pa.array([k for k, v in LABELS.items() if v == "member"])
CASUAL_SPELLINGS = pa.array([k for k, v in LABELS.items() if v == "casual"])
TIME_TYPE = pa.timestamp(UNIT)
CANONICAL_TYPES = {
    "trip_id": pa.int64(),
    "start_time": TIME_TYPE,
    "end_time": TIME_TYPE,
    "duration_s": pa.int64(),
    "start_station_id": pa.int64(),
    "start_station_name": pa.string(),
    "end_station_id": pa.int64(),
    "end_station_name": pa.string(),
    "bike_id": pa.int64(),
    "bike_model": pa.string(),
    "user_type": pa.string(),
    "source_file": pa.string(),
}
CANONICAL_SCHEMA = pa.schema([(name, CANONICAL_TYPES[name]) for name in CANONICAL_COLUMNS])


@dataclass(frozen=True)
class Checked:
    """A batch as canonical trips, each row's quarantine reason (null = keep) and its raw text."""

    trips: pa.Table
    reasons: pa.Array
    raw: pa.Array
    null_name: pa.Array  # a station name is NULL (next to a valid id: the row is kept)
    null_bike: pa.Array  # the bike id is empty or not an integer (the row is kept with a null)


def clean_text(values: pa.Array) -> pa.Array:
    """Trimmed strings, with empty strings and the literals NULL/NULLNULL as nulls."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.is_in(trimmed, value_set=NULL_TOKENS), pa.scalar(None, pa.string()), trimmed)


def clean_name(values: pa.Array) -> pa.Array:
    """Station names with runs of whitespace collapsed to one space."""
    return pc.replace_substring_regex(clean_text(values), r"\s{2,}", " ")


def parse_integer(values: pa.Array, pattern: str = UNSIGNED) -> tuple[pa.Array, pa.Array]:
    """(int64 values, mask of present values that are not integers) for cleaned strings."""
    ok = pc.match_substring_regex(values, pattern)
    ints = pc.cast(pc.if_else(ok, values, pa.scalar(None, pa.string())), pa.int64())
    return ints, pc.invert(pc.fill_null(ok, True))


def normalise_labels(values: pa.Array) -> pa.Array:
    """``member``/``casual`` for every published spelling; null for anything else."""
    lowered = pc.utf8_lower(values)
    casual = pc.if_else(pc.is_in(lowered, value_set=CASUAL_SPELLINGS), "casual", pa.scalar(None, pa.string()))
    return pc.if_else(pc.is_in(lowered, value_set=MEMBER_SPELLINGS), "member", casual)


class Reasons:
    """The first failing check per row: ``add`` only fills rows that have no reason yet."""

    def __init__(self, size: int) -> None:
        self.values = pa.nulls(size, pa.string())

    def add(self, mask: pa.Array, reason: str | pa.Array) -> None:
        label = pa.scalar(reason) if isinstance(reason, str) else reason
        chosen = pc.if_else(pc.fill_null(mask, False), label, pa.scalar(None, pa.string()))
        self.values = pc.coalesce(self.values, chosen)

    def kept(self) -> pa.Array:
        return pc.is_null(self.values)


def raw_column(batch: pa.RecordBatch, era: Era, canonical: str) -> pa.Array | None:
    """The batch's string column that the era maps to ``canonical`` (None when the era lacks it)."""
    for published, name in era.columns.items():
        if name == canonical:
            return batch.column(published)
    return None


def check_batch(batch: pa.RecordBatch, era: Era, fmt: str, source: str, min_duration_s: int) -> Checked:
    """Canonical trips and quarantine reasons for one batch (duplicates and period checked later)."""
    size = batch.num_rows
    raw = {name: raw_column(batch, era, name) for name in CANONICAL_COLUMNS}
    text = {name: clean_text(col) for name, col in raw.items() if col is not None}
    reasons = Reasons(size)
    trip_id, bad_id = parse_integer(text["trip_id"])
    reasons.add(pc.is_null(text["trip_id"]), "missing_trip_id")
    reasons.add(bad_id, "bad_trip_id")
    times = {}
    for name in ("start_time", "end_time"):
        times[name] = parse_times(text[name], fmt)
        reasons.add(pc.is_null(text[name]), f"missing_{name}")
        reasons.add(pc.is_null(times[name]), f"bad_{name}")
    duration, bad_duration = parse_integer(text["duration_s"], SIGNED)
    reasons.add(pc.is_null(text["duration_s"]), "missing_duration")
    reasons.add(bad_duration, "bad_duration")
    stations, null_names = check_stations(text, era, reasons)
    labels = normalise_labels(text["user_type"])
    reasons.add(pc.is_null(text["user_type"]), "missing_user_type")
    unknown = pc.binary_join_element_wise("unknown_user_type:", text["user_type"], "")
    reasons.add(pc.is_null(labels), unknown)
    check_durations(reasons, duration, times, min_duration_s)
    if "bike_id" in text:
        bike_id = parse_integer(text["bike_id"])[0]
        null_bike = pc.is_null(bike_id)
    else:
        bike_id, null_bike = pa.nulls(size, pa.int64()), pa.repeat(pa.scalar(False), size)
    columns = {
        "trip_id": trip_id,
        **times,
        "duration_s": duration,
        **stations,
        "bike_id": bike_id,
        "bike_model": text.get("bike_model", pa.nulls(size, pa.string())),
        "user_type": labels,
        "source_file": pa.repeat(pa.scalar(source), size),
    }
    trips = pa.Table.from_arrays([columns[c] for c in CANONICAL_COLUMNS], schema=CANONICAL_SCHEMA)
    joined = pc.binary_join_element_wise(*batch.columns, ",", null_handling="replace")
    return Checked(trips, reasons.values, joined, null_names, null_bike)


def check_stations(text: dict[str, pa.Array], era: Era, reasons: Reasons) -> tuple[dict, pa.Array]:
    """Station ids and names; eras without ids need both names. Returns columns and the NULL-name mask."""
    size = len(text["start_station_name"])
    columns: dict[str, pa.Array] = {}
    null_name = pa.repeat(pa.scalar(False), size)
    for side in ("start", "end"):
        name = clean_name(text[f"{side}_station_name"])
        columns[f"{side}_station_name"] = name
        if era.has_station_ids:
            raw_id = text[f"{side}_station_id"]
            ids, bad = parse_integer(raw_id)
            reasons.add(pc.is_null(raw_id), "missing_station_id")
            reasons.add(bad, "bad_station_id")
            null_name = pc.or_(null_name, pc.is_null(name))
        else:
            ids = pa.nulls(size, pa.int64())
            reasons.add(pc.is_null(name), "missing_station")
        columns[f"{side}_station_id"] = ids
    return columns, null_name


def check_durations(reasons: Reasons, duration: pa.Array, times: dict[str, pa.Array], minimum: int) -> None:
    """Zero/negative, over 24 h, end before start, and shorter than the configured minimum (re-docks)."""
    reasons.add(pc.less_equal(duration, 0), "nonpositive_duration")
    reasons.add(pc.greater(duration, MAX_DURATION_S), "too_long")
    reasons.add(pc.less(times["end_time"], times["start_time"]), "end_before_start")
    reasons.add(pc.less(duration, minimum), "too_short")


def count_true(mask: pa.Array) -> int:
    """Number of true values in a boolean array (nulls count as false)."""
    return int(pc.sum(pc.fill_null(mask, False)).as_py() or 0)


def period_outside(start: pa.Array, period: str | None) -> pa.Array | None:
    """Mask of start times outside ``YYYY`` or ``YYYY-MM`` (None when no period is set)."""
    if period is None:
        return None
    outside = pc.not_equal(pc.year(start), int(period[:4]))
    if len(period) == 7:
        outside = pc.or_(outside, pc.not_equal(pc.month(start), int(period[5:7])))
    return outside


def mark_duplicates(reasons: pa.Array, trip_id: pa.Array, seen: SeenIds) -> pa.Array:
    """Add ``duplicate_trip_id`` to kept rows whose id was kept before in this run."""
    kept = np.flatnonzero(pc.is_null(reasons).to_numpy(zero_copy_only=False))
    if kept.size == 0:
        return reasons
    ids = trip_id.take(pa.array(kept)).to_numpy(zero_copy_only=False)
    repeated = np.zeros(len(reasons), dtype=bool)
    repeated[kept[seen.mark_repeats(ids.astype(np.int64))]] = True
    chosen = pc.if_else(pa.array(repeated), "duplicate_trip_id", pa.scalar(None, pa.string()))
    return pc.coalesce(reasons, chosen)
