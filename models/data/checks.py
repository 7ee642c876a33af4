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

from models.data.column_parsers import (
    NULL_STRING,
    Parsed,
    any_true,
    clean_text,
    parse_integer,
    parse_labels,
    parse_names,
    parse_text,
    parse_time,
)
from models.data.datetimes import UNIT
from models.data.duplicates import SeenIds
from models.data.eras import Era
from models.data.features import CANONICAL_COLUMNS

MAX_DURATION_S = 24 * 3600
MAX_FIELD_BYTES = 1000  # the longest real value is a station name of under 100 characters
TIME_TYPE = pa.timestamp(UNIT)
TEXT_TYPE = pa.dictionary(pa.int32(), pa.string())  # repetitive text, written to Parquet as it is
CANONICAL_TYPES = {
    "trip_id": pa.int64(),
    "start_time": TIME_TYPE,
    "end_time": TIME_TYPE,
    "duration_s": pa.int64(),
    "start_station_id": pa.int64(),
    "start_station_name": TEXT_TYPE,
    "end_station_id": pa.int64(),
    "end_station_name": TEXT_TYPE,
    "bike_id": pa.int64(),
    "bike_model": TEXT_TYPE,
    "user_type": TEXT_TYPE,
    "source_file": TEXT_TYPE,
}
CANONICAL_SCHEMA = pa.schema([(name, CANONICAL_TYPES[name]) for name in CANONICAL_COLUMNS])


@dataclass(frozen=True)
class Checked:
    """A batch as canonical trips, each row's quarantine reason (null = keep) and its kept-null masks."""

    trips: pa.Table
    reasons: pa.Array
    null_name: pa.Array | None  # a station name is NULL (next to a valid id: the row is kept)
    null_bike: pa.Array | None  # the bike id is empty or not an integer (the row is kept with a null)


class Reasons:
    """The first failing check per row: ``add`` only fills rows that have no reason yet."""

    def __init__(self, size: int) -> None:
        self.values = pa.nulls(size, pa.string())

    def add(self, mask: pa.Array | None, reason: str | pa.Array) -> None:
        """Give ``reason`` to the rows of ``mask`` that have none yet (cheap when nothing is flagged)."""
        mask = None if mask is None else pc.fill_null(mask, False)
        if not any_true(mask):
            return
        label = pa.scalar(reason) if isinstance(reason, str) else reason
        self.values = pc.coalesce(self.values, pc.if_else(mask, label, NULL_STRING))

    def kept(self) -> pa.Array:
        return pc.is_null(self.values)


def raw_column(batch: pa.RecordBatch, era: Era, canonical: str) -> pa.Array | None:
    """The batch's string column that the era maps to ``canonical`` (None when the era lacks it)."""
    for published, name in era.columns.items():
        if name == canonical:
            return batch.column(published)
    return None


def check_batch(
    batch: pa.RecordBatch, era: Era, fmt: str, source: str, min_duration_s: int, start: Parsed | None = None
) -> Checked:
    """Canonical trips and quarantine reasons for one batch (duplicates are checked later, in order).

    ``start`` is the batch's start times when already parsed (by the period filter).
    """
    raw = {name: raw_column(batch, era, name) for name in CANONICAL_COLUMNS}
    reasons = Reasons(batch.num_rows)
    for column in batch.columns:  # a runaway field (a quote swallowing lines, a corrupt row)
        if longest_value(column) > MAX_FIELD_BYTES:
            reasons.add(pc.greater(pc.binary_length(column), MAX_FIELD_BYTES), "field_too_long")
    parsed = {"trip_id": parse_integer(raw["trip_id"])}
    parsed["start_time"] = start if start is not None else parse_time(raw["start_time"], fmt)
    parsed["end_time"] = parse_time(raw["end_time"], fmt)
    parsed["duration_s"] = parse_integer(raw["duration_s"], signed=True)
    for name, label in (("trip_id", "trip_id"), ("start_time", "start_time"), ("end_time", "end_time")):
        add_parse_reasons(reasons, parsed[name], label)
    add_parse_reasons(reasons, parsed["duration_s"], "duration")
    stations, null_name = check_stations(raw, era, reasons)
    labels = check_labels(raw["user_type"], reasons)
    values = {name: item.values for name, item in parsed.items()}
    check_durations(reasons, values["duration_s"], values["start_time"], values["end_time"], min_duration_s)
    extras, null_bike = optional_columns(raw, batch.num_rows)
    columns = {
        **values,
        **stations,
        **extras,
        "user_type": labels,
        "source_file": repeated_text(source, batch.num_rows),
    }
    trips = pa.Table.from_arrays([columns[c] for c in CANONICAL_COLUMNS], schema=CANONICAL_SCHEMA)
    return Checked(trips, reasons.values, null_name, null_bike)


def repeated_text(value: str, size: int) -> pa.DictionaryArray:
    """One text value on every row, as a one-entry dictionary."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(size, dtype=np.int32)), pa.array([value]))


def longest_value(column: pa.Array) -> int:
    """Bytes in the longest value of a string column, read from its offsets (no kernel, no copy)."""
    if len(column) == 0:
        return 0
    width = (
        np.int64
        if pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type)
        else np.int32
    )
    offsets = np.frombuffer(column.buffers()[1], dtype=width)[column.offset : column.offset + len(column) + 1]
    return int(np.max(np.diff(offsets)))


def check_labels(raw: pa.Array, reasons: Reasons) -> pa.Array:
    """member/casual; a missing label, or any other value (named in the reason), is quarantined."""
    labels = parse_labels(raw)
    reasons.add(labels.missing, "missing_user_type")
    if any_true(labels.bad):
        reasons.add(labels.bad, pc.binary_join_element_wise("unknown_user_type:", clean_text(raw), ""))
    return labels.values


def optional_columns(
    raw: dict[str, pa.Array | None], size: int
) -> tuple[dict[str, pa.Array], pa.Array | None]:
    """Bike id and model (null when the era lacks them) and the mask of rows kept with a null bike id."""
    if raw["bike_id"] is None:
        bike, null_bike = pa.nulls(size, pa.int64()), None
    else:
        bike = parse_integer(raw["bike_id"]).values
        null_bike = pc.is_null(bike) if bike.null_count else None
    model = (
        parse_text(raw["bike_model"]).values if raw["bike_model"] is not None else pa.nulls(size, TEXT_TYPE)
    )
    return {"bike_id": bike, "bike_model": model}, null_bike


def add_parse_reasons(reasons: Reasons, parsed: Parsed, name: str) -> None:
    """``missing_<name>`` for absent values, ``bad_<name>`` for present but unparseable ones."""
    reasons.add(parsed.missing, f"missing_{name}")
    reasons.add(parsed.bad, f"bad_{name}")


def check_stations(
    raw: dict[str, pa.Array | None], era: Era, reasons: Reasons
) -> tuple[dict, pa.Array | None]:
    """Station ids and names; eras without ids need both names. Returns columns and the NULL-name mask."""
    columns: dict[str, pa.Array] = {}
    null_name = None
    for side in ("start", "end"):
        names = parse_names(raw[f"{side}_station_name"])
        columns[f"{side}_station_name"] = names.values
        if era.has_station_ids:
            ids = parse_integer(raw[f"{side}_station_id"])
            reasons.add(ids.missing, "missing_station_id")
            reasons.add(ids.bad, "bad_station_id")
            if names.missing is not None:
                null_name = names.missing if null_name is None else pc.or_(null_name, names.missing)
        else:
            ids = Parsed(pa.nulls(len(names.values), pa.int64()))
            reasons.add(names.missing, "missing_station")
        columns[f"{side}_station_id"] = ids.values
    return columns, null_name


def check_durations(
    reasons: Reasons, duration: pa.Array, start: pa.Array, end: pa.Array, minimum: int
) -> None:
    """Zero/negative, over 24 h, end before start, and shorter than the configured minimum (re-docks)."""
    reasons.add(pc.less_equal(duration, 0), "nonpositive_duration")
    reasons.add(pc.greater(duration, MAX_DURATION_S), "too_long")
    reasons.add(pc.less(end, start), "end_before_start")
    reasons.add(pc.less(duration, minimum), "too_short")


def count_true(mask: pa.Array) -> int:
    """Number of true values in a boolean array (nulls count as false)."""
    return int(pc.sum(pc.fill_null(mask, False)).as_py() or 0)


def mark_duplicates(reasons: pa.Array, trip_id: pa.Array, seen: SeenIds) -> pa.Array:
    """Add ``duplicate_trip_id`` to kept rows whose id was kept before in this run."""
    if reasons.null_count == len(reasons):  # every row kept so far: no nulls among the ids
        kept = np.arange(len(reasons))
        ids = trip_id.to_numpy(zero_copy_only=False)
    else:
        kept = np.flatnonzero(pc.is_null(reasons).to_numpy(zero_copy_only=False))
        ids = trip_id.take(pa.array(kept)).to_numpy(zero_copy_only=False)
    if kept.size == 0:
        return reasons
    repeats = seen.mark_repeats(ids.astype(np.int64))
    if not repeats.any():
        return reasons
    repeated = np.zeros(len(reasons), dtype=bool)
    repeated[kept[repeats]] = True
    return pc.coalesce(reasons, pc.if_else(pa.array(repeated), "duplicate_trip_id", NULL_STRING))
