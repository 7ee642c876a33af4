"""Model features built from canonical trips: the contract between preprocessing and training.

Preprocessing writes every column in ``OUTPUT_COLUMNS``; training reads ``FEATURE_COLUMNS``
(with ``CATEGORICAL_FEATURES`` treated as categories), ``LABEL_COLUMN`` as the target and
``TIME_COLUMN`` for the time-based split.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.core.names import LABEL_COLUMN, POSITIVE_LABEL  # noqa: F401 (re-exported: the feature contract)
from models.data.holidays import holidays_for

TIME_COLUMN = "start_time"  # naive local America/Toronto wall-clock time

NUMERIC_FEATURES = [
    "hour",  # 0-23, local start hour
    "weekday",  # 0 = Monday
    "month",  # 1-12
    "is_weekend",  # 0/1
    "is_holiday",  # 0/1, Ontario statutory holidays
    "duration_s",  # trip duration in seconds
    "round_trip",  # 0/1, start station == end station
]
CATEGORICAL_FEATURES = ["start_station_id", "end_station_id"]
FEATURE_COLUMNS = NUMERIC_FEATURES + CATEGORICAL_FEATURES
# Features the period fixes: every trip of a month has the same ``month``, and the calendar decides which
# of its days are holidays, so any two months differ in them by construction. Drift monitoring measures and
# shows them but never counts them as drift (``models.scoring.drift``).
CALENDAR_FEATURES = ["month", "is_holiday"]

CANONICAL_COLUMNS = [
    "trip_id",
    "start_time",
    "end_time",
    "duration_s",
    "start_station_id",
    "start_station_name",
    "end_station_id",
    "end_station_name",
    "bike_id",
    "bike_model",
    "user_type",
    "source_file",
]
# The processed Parquet: canonical trips followed by the features they do not already hold.
OUTPUT_COLUMNS = CANONICAL_COLUMNS + [c for c in NUMERIC_FEATURES if c not in CANONICAL_COLUMNS]
SATURDAY = 5
THURSDAY = 3  # 1970-01-01, day 0
EPOCH = dt.date(1970, 1, 1)
MAX_TABLE_DAYS = 100_000


def as_flag(mask: pa.Array) -> pa.Array:
    """A boolean mask as 0/1 int8 (null counts as 0)."""
    return pc.cast(pc.fill_null(mask, False), pa.int8())


def same_station(trips: pa.Table) -> pa.Array:
    """Start == end station: by id where both ids are known, else by name (eras without ids)."""
    by_id = pc.equal(trips["start_station_id"], trips["end_station_id"])
    if by_id.null_count == 0:
        return by_id
    by_name = pc.equal(trips["start_station_name"], trips["end_station_name"])
    return pc.coalesce(by_id, by_name)


@dataclass(frozen=True)
class Calendar:
    """Day numbers and calendar fields of start times (numpy; 0 where the time is null)."""

    days: np.ndarray  # since 1970-01-01
    year: np.ndarray
    month: np.ndarray
    hour: np.ndarray
    weekday: np.ndarray  # Monday = 0
    valid: np.ndarray


def civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Year and month of day numbers (H. Hinnant's algorithm), vectorised."""
    shifted = days + 719468
    era = shifted // 146097
    day_of_era = shifted - era * 146097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    month = np.where(shifted_month < 10, shifted_month + 3, shifted_month - 9)
    return year_of_era + era * 400 + (month <= 2), month


def calendar(start: pa.Array | pa.ChunkedArray) -> Calendar:
    """Calendar fields of naive timestamps, read once from their integer values."""
    if isinstance(start, pa.ChunkedArray):
        start = start.combine_chunks()
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[start.type.unit]
    ticks = start.cast(pa.int64()).fill_null(0).to_numpy()
    seconds = ticks // per_second
    valid = start.is_valid().to_numpy(zero_copy_only=False)
    days = seconds // 86400
    year, month = civil_from_days_few(days, valid)
    hour = (seconds - days * 86400) // 3600
    return Calendar(days, year, month, hour, (days + THURSDAY) % 7, valid)


def civil_from_days_few(days: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``civil_from_days``, worked out once per day of the range a batch spans (usually a month)."""
    if not valid.any():
        return np.zeros_like(days), np.zeros_like(days)
    low, high = int(days[valid].min()), int(days[valid].max())
    if high - low > MAX_TABLE_DAYS:
        return civil_from_days(days)
    year, month = civil_from_days(np.arange(low, high + 1))
    index = np.where(valid, days - low, 0)
    return year[index], month[index]


def holiday_days(years: np.ndarray) -> np.ndarray:
    """Day numbers of the statutory holidays of the given years (those datetime can represent)."""
    if not len(years):
        return np.zeros(0, np.int64)
    low, high = int(years.min()), int(years.max())
    present = np.flatnonzero(np.bincount(years - low)) + low if high - low < dt.MAXYEAR else np.unique(years)
    wanted = [int(y) for y in present if dt.MINYEAR <= y < dt.MAXYEAR]
    return np.array([(day - EPOCH).days for day in holidays_for(wanted)], np.int64)


def small_ints(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """int8 values, null where the start time is null."""
    return pa.array(values.astype(np.int8), pa.int8(), mask=None if valid.all() else ~valid)


def build_features(trips: pa.Table, cal: Calendar | None = None) -> pa.Table:
    """Canonical trips plus the time and trip features of ``NUMERIC_FEATURES``.

    Times are naive local Toronto wall-clock, so hour, weekday and holiday are read directly from
    them (``cal``: their calendar, when the caller has it already). ``duration_s`` and the station
    ids are canonical columns already (ids stay integers).
    """
    cal = cal if cal is not None else calendar(trips[TIME_COLUMN])
    holiday = np.isin(cal.days, holiday_days(cal.year[cal.valid]), kind="table") & cal.valid
    features = {
        "hour": small_ints(cal.hour, cal.valid),
        "weekday": small_ints(cal.weekday, cal.valid),
        "month": small_ints(cal.month, cal.valid),
        "is_weekend": pa.array(((cal.weekday >= SATURDAY) & cal.valid).astype(np.int8)),
        "is_holiday": pa.array(holiday.astype(np.int8)),
        "round_trip": as_flag(same_station(trips)),
    }
    for name, values in features.items():
        trips = trips.append_column(name, values)
    return trips
