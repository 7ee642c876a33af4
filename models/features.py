"""Model features built from canonical trips: the contract between preprocessing and training.

Preprocessing writes every column in ``OUTPUT_COLUMNS``; training reads ``FEATURE_COLUMNS``
(with ``CATEGORICAL_FEATURES`` treated as categories), ``LABEL_COLUMN`` as the target and
``TIME_COLUMN`` for the time-based split.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from models.holidays import holidays_for

LABEL_COLUMN = "user_type"  # "member" / "casual"
POSITIVE_LABEL = "member"
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


def build_features(trips: pa.Table) -> pa.Table:
    """Canonical trips plus the time and trip features of ``NUMERIC_FEATURES``.

    Times are naive local Toronto wall-clock, so hour, weekday and holiday are read directly from
    them. ``duration_s`` and the station ids are canonical columns already (ids stay integers).
    """
    start = trips[TIME_COLUMN]
    weekday = pc.day_of_week(start)  # Monday = 0
    years = [y for y in pc.unique(pc.year(start)).drop_null().to_pylist() if dt.MINYEAR <= y < dt.MAXYEAR]
    days = pa.array(holidays_for(years), pa.date32())
    features = {
        "hour": pc.cast(pc.hour(start), pa.int8()),
        "weekday": pc.cast(weekday, pa.int8()),
        "month": pc.cast(pc.month(start), pa.int8()),
        "is_weekend": as_flag(pc.greater_equal(weekday, SATURDAY)),
        "is_holiday": as_flag(pc.is_in(pc.cast(start, pa.date32()), value_set=days)),
        "round_trip": as_flag(same_station(trips)),
    }
    for name, values in features.items():
        trips = trips.append_column(name, values)
    return trips
