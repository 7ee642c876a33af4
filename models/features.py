"""Model features built from canonical trips: the contract between preprocessing and training.

Preprocessing writes every column in ``OUTPUT_COLUMNS``; training reads ``FEATURE_COLUMNS``
(with ``CATEGORICAL_FEATURES`` treated as categories), ``LABEL_COLUMN`` as the target and
``TIME_COLUMN`` for the time-based split.
"""

from __future__ import annotations

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
