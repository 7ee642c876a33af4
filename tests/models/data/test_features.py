"""Features from canonical trips: hour, weekday, month, weekend, Ontario holidays, round trips."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from models.data.checks import CANONICAL_SCHEMA
from models.data.features import FEATURE_COLUMNS, OUTPUT_COLUMNS, build_features, calendar
from models.data.holidays import easter_sunday, holidays_for, ontario_holidays
from models.data.quality import month_label_keys

pytestmark = pytest.mark.unit


def trips(*rows: dict) -> pa.Table:
    base = {name: None for name in CANONICAL_SCHEMA.names}
    columns = {name: [dict(base, **row)[name] for row in rows] for name in CANONICAL_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=CANONICAL_SCHEMA)


def features_of(**row) -> dict:
    return build_features(trips(row)).to_pylist()[0]


def test_hour_weekday_month_and_weekend_from_local_wall_clock():
    saturday = features_of(start_time=dt.datetime(2025, 6, 7, 23, 59), duration_s=600)
    assert (saturday["hour"], saturday["weekday"], saturday["month"], saturday["is_weekend"]) == (23, 5, 6, 1)
    monday = features_of(start_time=dt.datetime(2025, 6, 9, 8, 0))
    assert (monday["hour"], monday["weekday"], monday["is_weekend"]) == (8, 0, 0)


def test_dst_gap_time_keeps_its_published_hour():
    assert features_of(start_time=dt.datetime(2025, 3, 9, 2, 30))["hour"] == 2  # does not exist in Toronto


def test_round_trip_by_station_id():
    monday = dt.datetime(2025, 6, 9)
    assert features_of(start_time=monday, start_station_id=7000, end_station_id=7000)["round_trip"] == 1
    assert features_of(start_time=monday, start_station_id=7000, end_station_id=7001)["round_trip"] == 0


def test_round_trip_by_name_when_the_era_has_no_ids():
    day = dt.datetime(2017, 8, 1)
    same = features_of(start_time=day, start_station_name="A St", end_station_name="A St")
    other = features_of(start_time=day, start_station_name="A St", end_station_name="B St")
    assert (same["round_trip"], other["round_trip"]) == (1, 0)


def test_duration_and_station_ids_stay_integers():
    table = build_features(
        trips({"start_time": dt.datetime(2025, 6, 9), "duration_s": 61, "start_station_id": 7})
    )
    assert table.schema.field("duration_s").type == pa.int64()
    assert table.schema.field("start_station_id").type == pa.int64()
    assert table.to_pylist()[0]["duration_s"] == 61


def test_output_has_every_feature_column():
    table = build_features(trips({"start_time": dt.datetime(2025, 6, 9)}))
    assert set(FEATURE_COLUMNS) <= set(table.column_names)
    assert set(OUTPUT_COLUMNS) == set(table.column_names)


@pytest.mark.parametrize(
    ("day", "holiday"),
    [
        (dt.date(2025, 1, 1), 1),  # New Year's Day
        (dt.date(2025, 2, 17), 1),  # Family Day: third Monday of February
        (dt.date(2025, 4, 18), 1),  # Good Friday
        (dt.date(2025, 5, 19), 1),  # Victoria Day: Monday before May 25
        (dt.date(2025, 7, 1), 1),  # Canada Day
        (dt.date(2025, 8, 4), 0),  # Civic Holiday is not statutory
        (dt.date(2025, 9, 1), 1),  # Labour Day
        (dt.date(2025, 10, 13), 1),  # Thanksgiving: second Monday of October
        (dt.date(2025, 12, 25), 1),
        (dt.date(2025, 12, 26), 1),
        (dt.date(2025, 6, 9), 0),
    ],
)
def test_is_holiday_for_ontario_statutory_holidays(day, holiday):
    start = dt.datetime.combine(day, dt.time(12))
    assert features_of(start_time=start)["is_holiday"] == holiday


def test_weekend_holidays_add_their_observed_weekday():
    days_2021 = ontario_holidays(2021)  # Christmas on Saturday, Boxing Day on Sunday
    assert dt.date(2021, 12, 27) in days_2021 and dt.date(2021, 12, 28) in days_2021
    assert dt.date(2022, 1, 3) in ontario_holidays(2022)  # New Year's Day 2022 was a Saturday
    assert dt.date(2024, 5, 20) in ontario_holidays(2024)  # Victoria Day when May 25 is a Saturday


@pytest.mark.parametrize(
    ("year", "easter"),
    [(2017, dt.date(2017, 4, 16)), (2019, dt.date(2019, 4, 21)), (2024, dt.date(2024, 3, 31))],
)
def test_easter_by_rule(year, easter):
    assert easter_sunday(year) == easter


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
@pytest.mark.parametrize("spread_days", [40, 300_000])  # one month (a table per day) or centuries
def test_calendar_fields_agree_with_arrow_for_random_times(unit, spread_days):
    rng = np.random.default_rng(spread_days)
    seconds = rng.integers(-spread_days * 86400 // 2, spread_days * 86400 // 2, 5000) + 1_700_000_000
    per_second = {"s": 1, "ms": 1000, "us": 1_000_000}[unit]
    valid = rng.random(5000) > 0.05
    start = pa.array(seconds * per_second, pa.timestamp(unit), mask=~valid)
    cal = calendar(start)
    for name, kernel in (
        ("year", pc.year),
        ("month", pc.month),
        ("hour", pc.hour),
        ("weekday", pc.day_of_week),
    ):
        assert getattr(cal, name)[valid].tolist() == kernel(start).drop_null().to_pylist(), name
    table = build_features(trips(*({"start_time": t} for t in start.to_pylist())))
    days = pc.cast(start, pa.date32())
    holidays = pa.array(holidays_for(range(1500, 2500)), pa.date32())
    expected = pc.cast(pc.fill_null(pc.is_in(days, value_set=holidays), False), pa.int8())
    assert table["is_holiday"].to_pylist() == expected.to_pylist()
    assert table["hour"].null_count == (~valid).sum()


def test_month_label_keys_read_dictionary_labels_like_plain_ones():
    labels = pa.array(["member", "casual", None, "member"])
    year, month = np.array([2024, 2024, 2025, 2025]), np.array([12, 12, 1, 1])
    plain = month_label_keys(year, month, labels).to_pylist()
    assert plain == month_label_keys(year, month, labels.dictionary_encode()).to_pylist()
    assert plain == [404825, 404824, 405002, 405003]
