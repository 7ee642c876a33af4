"""Tests of models.training.dataset, and the synthetic feature frames the other model tests train on.

``build_trips`` writes trips with the columns of ``models.data.features`` and the structure the data notes
describe (members: weekday rush hours, short trips between busy stations; casual riders: weekends and
afternoons, long trips, more round trips), so that a model has something real to learn.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.core import storage
from models.core.errors import UserError
from models.data.features import CANONICAL_COLUMNS, FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN
from models.training.dataset import read_labelled_trips, read_training_inputs, select_features, split_by_month

BUSY_STATIONS = np.arange(7000, 7030)
ALL_STATIONS = np.arange(7000, 7600)  # 600 stations: more than the booster's 255 category bins


def pick_times(
    rng: np.random.Generator, weekend: np.ndarray, hours: np.ndarray, months: list[str]
) -> pd.Series:
    """A start time per trip on a random day of ``months`` whose weekend-ness matches ``weekend``."""
    days = pd.date_range(f"{months[0]}-01", pd.Period(months[-1]).end_time.normalize(), freq="D")
    weekend_days, week_days = days[days.day_of_week >= 5], days[days.day_of_week < 5]
    day = np.where(
        weekend,
        weekend_days[rng.integers(0, len(weekend_days), len(weekend))],
        week_days[rng.integers(0, len(week_days), len(weekend))],
    )
    minutes = rng.integers(0, 60, len(weekend))
    return pd.Series(pd.to_datetime(day) + pd.to_timedelta(hours * 60 + minutes, unit="min"))


def pick_stations(rng: np.random.Generator, member: np.ndarray) -> np.ndarray:
    """Members mostly use the busy downtown stations, casual riders any station."""
    busy = rng.random(len(member)) < np.where(member, 0.7, 0.15)
    return np.where(busy, rng.choice(BUSY_STATIONS, len(member)), rng.choice(ALL_STATIONS, len(member)))


def build_trips(rows: int = 6000, months: tuple[str, ...] = ("2025-06", "2025-07", "2025-08"), seed: int = 7):
    """Processed trips (canonical + feature columns) with a learnable member/casual structure."""
    rng = np.random.default_rng(seed)
    member = rng.random(rows) < 0.72
    weekend = rng.random(rows) < np.where(member, 0.15, 0.5)
    rush = np.where(rng.random(rows) < 0.5, rng.normal(8, 1.0, rows), rng.normal(17.5, 1.2, rows))
    hours = np.clip(np.where(member, rush, rng.normal(14, 3, rows)), 0, 23).astype(int)
    start = pick_times(rng, weekend, hours, list(months))
    round_trip = rng.random(rows) < np.where(member, 0.02, 0.2)
    start_station = pick_stations(rng, member)
    end_station = np.where(round_trip, start_station, pick_stations(rng, member))
    duration = np.exp(rng.normal(np.where(member, np.log(700), np.log(1900)), 0.5)).astype(int) + 60
    frame = pd.DataFrame(
        {
            "trip_id": np.arange(rows),
            TIME_COLUMN: start,
            "end_time": start + pd.to_timedelta(duration, unit="s"),
            "duration_s": duration,
            "start_station_id": start_station,
            "end_station_id": end_station,
            LABEL_COLUMN: np.where(member, "member", "casual"),
        }
    )
    return add_features(frame)


def add_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model features derived from the canonical columns, as preprocessing defines them."""
    start = frame[TIME_COLUMN]
    frame = frame.assign(
        hour=start.dt.hour,
        weekday=start.dt.day_of_week,
        month=start.dt.month,
        is_weekend=(start.dt.day_of_week >= 5).astype(int),
        is_holiday=0,
        round_trip=(frame["start_station_id"] == frame["end_station_id"]).astype(int),
    )
    for column in CANONICAL_COLUMNS:
        if column not in frame:
            frame[column] = None
    return frame


def make_tracking_uri(tmp_path_factory: pytest.TempPathFactory, directory: Path) -> str:
    """A fresh SQLite tracking store in ``directory``: a copy of a session-wide migrated template.

    MLflow spends seconds creating its tables; copying a finished empty database takes milliseconds.
    Run artifacts land under ``./mlruns`` of the working directory, so tests chdir into ``directory``.
    """
    template = tmp_path_factory.getbasetemp() / "mlflow-template.db"
    if not template.exists():
        staging = template.with_suffix(".staging")
        MlflowClient(f"sqlite:///{staging}").search_experiments()
        staging.replace(template)
    shutil.copyfile(template, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_trips(path, frame: pd.DataFrame):
    """Write a frame as the processed Parquet file training reads; returns the path as a string."""
    frame.to_parquet(path, index=False)
    return str(path)


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
