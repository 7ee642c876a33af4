"""Tests of models.training.dataset: reading processed trips, features, labels, the monthly split."""

from __future__ import annotations

import pandas as pd
import pytest

from models.core import storage
from models.core.errors import UserError
from models.data.features import FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN
from models.training.dataset import (
    month_keys,
    read_labelled_trips,
    read_training_inputs,
    select_features,
    split_by_month,
)
from tests.models.training.trips import build_trips, write_trips


@pytest.mark.unit
def test_split_validates_on_the_latest_month():
    split = split_by_month(build_trips(rows=3000), "synthetic")
    assert split.valid_month == "2025-08"
    assert split.train[TIME_COLUMN].max() < pd.Timestamp("2025-08-01")
    assert (split.valid[TIME_COLUMN] >= pd.Timestamp("2025-08-01")).all()
    assert len(split.train) + len(split.valid) == 3000


@pytest.mark.unit
def test_split_of_a_single_month_is_a_user_error():
    with pytest.raises(UserError, match="only one month"):
        split_by_month(build_trips(rows=500, months=("2025-07",)), "one-month.parquet")


@pytest.mark.unit
def test_a_stray_latest_month_is_a_user_error_not_a_silent_validation_set():
    frame = build_trips(rows=2000, months=("2025-06", "2025-07"))
    stray = frame.iloc[[0]].assign(**{TIME_COLUMN: pd.Timestamp("2026-01-01 09:00")})
    with pytest.raises(UserError, match="2026-01"):
        split_by_month(pd.concat([frame, stray]), "stray.parquet")


@pytest.mark.unit
def test_reading_a_missing_file_or_column_names_it(tmp_path):
    with pytest.raises(UserError, match=r"nope\.parquet"):
        read_labelled_trips(tmp_path / "nope.parquet")
    path = write_trips(tmp_path / "partial.parquet", build_trips(rows=100).drop(columns=["hour"]))
    with pytest.raises(UserError, match="hour"):
        read_labelled_trips(path)


@pytest.mark.unit
def test_unknown_labels_are_refused(tmp_path):
    frame = build_trips(rows=100)
    frame.loc[3, LABEL_COLUMN] = "Annual Member"
    with pytest.raises(UserError, match="Annual Member"):
        read_labelled_trips(write_trips(tmp_path / "labels.parquet", frame))


@pytest.mark.unit
def test_select_features_keeps_contract_order_and_missing_stations():
    frame = build_trips(rows=50)
    frame["start_station_id"] = frame["start_station_id"].astype("Int64")
    frame.loc[0, "start_station_id"] = pd.NA
    features = select_features(frame)
    assert list(features.columns) == FEATURE_COLUMNS
    assert features["start_station_id"].isna().sum() == 1
    assert (features.dtypes == "float64").all()


@pytest.mark.unit
def test_select_features_refuses_text_in_a_numeric_column():
    frame = build_trips(rows=20).astype({"end_station_id": "object"})
    frame.loc[2, "end_station_id"] = "Bay St"
    with pytest.raises(UserError, match="end_station_id"):
        select_features(frame)


@pytest.mark.unit
def test_several_inputs_are_read_as_one_frame_with_each_digest_and_months(tmp_path):
    july = write_trips(tmp_path / "july.parquet", build_trips(rows=300, months=("2025-07",), seed=1))
    august = write_trips(tmp_path / "august.parquet", build_trips(rows=200, months=("2025-08",), seed=2))
    data = read_training_inputs([july, august])
    assert len(data.frame) == 500 and list(data.frame.index) == list(range(500))
    assert [(i.uri, i.rows, i.months) for i in data.inputs] == [
        (july, 300, ("2025-07",)),
        (august, 200, ("2025-08",)),
    ]
    assert [i.digest for i in data.inputs] == [storage.file_digest(july), storage.file_digest(august)]
    assert data.digest not in {storage.file_digest(july), storage.file_digest(august)}
    assert data.digest != read_training_inputs([august, july]).digest
    assert read_training_inputs([july]).digest == storage.file_digest(july)
    assert split_by_month(data.frame, data.source).valid_month == "2025-08"


@pytest.mark.unit
def test_inputs_that_share_a_month_are_refused(tmp_path):
    year = write_trips(tmp_path / "2025.parquet", build_trips(rows=300, months=("2025-06", "2025-08")))
    august = write_trips(tmp_path / "2025-08.parquet", build_trips(rows=200, months=("2025-08",)))
    with pytest.raises(UserError, match="both hold trips of 2025-08") as caught:
        read_training_inputs([year, august])
    assert year in str(caught.value) and august in str(caught.value)


@pytest.mark.unit
def test_a_bad_label_is_named_with_its_own_input(tmp_path):
    good = write_trips(tmp_path / "good.parquet", build_trips(rows=100, months=("2025-07",)))
    frame = build_trips(rows=100, months=("2025-08",))
    frame.loc[5, LABEL_COLUMN] = "Casual Member"
    bad = write_trips(tmp_path / "bad.parquet", frame)
    with pytest.raises(UserError, match=r"bad\.parquet has 1 row"):
        read_training_inputs([good, bad])


@pytest.mark.unit
def test_split_is_the_same_whether_the_months_are_in_order_or_not():
    trips = build_trips(rows=3000)
    shuffled, ordered = (
        split_by_month(trips, "shuffled"),
        split_by_month(trips.sort_values(TIME_COLUMN), "ordered"),
    )
    assert ordered.valid_month == shuffled.valid_month == "2025-08"
    assert ordered.train.sort_index().equals(shuffled.train)
    assert ordered.valid.sort_index().equals(shuffled.valid)


@pytest.mark.unit
def test_month_keys_count_months_from_year_zero_in_the_times_own_zone():
    times = pd.Series(pd.to_datetime(["1969-12-31 23:59", "2025-01-01 00:00", "2025-12-31 23:59"]))
    assert month_keys(times).tolist() == [1969 * 12 + 11, 2025 * 12, 2025 * 12 + 11]
    aware = pd.Series(pd.to_datetime(["2025-03-01 00:30"]).tz_localize("America/Toronto"))
    assert month_keys(aware).tolist() == [2025 * 12 + 2]
