"""Synthetic processed trips for the tests that train, register and score models.

``build_trips`` writes trips with the columns of ``models.data.features`` and the structure the data notes
describe (members: weekday rush hours, short trips between busy stations; casual riders: weekends and
afternoons, long trips, more round trips), so that a model has something real to learn.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.data.features import CANONICAL_COLUMNS, LABEL_COLUMN, TIME_COLUMN

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


def train_champion(tmp_path_factory: pytest.TempPathFactory, name: str) -> SimpleNamespace:
    """A fresh store whose registry has ``name``'s champion, trained on June-August (validated on August).

    Returns ``uri``, ``run_id``, ``version``, ``features`` (the trips file it was trained on) and
    ``workdir`` (run artifacts sit under its ``./mlruns``: chdir there before loading the model).
    """
    from models.registry.register import register_model
    from models.training.train import train_model

    workdir = tmp_path_factory.mktemp(name)
    uri = make_tracking_uri(tmp_path_factory, workdir)
    features = write_trips(workdir / "trips.parquet", build_trips(rows=4000, seed=3))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        run = train_model(features, tracking_uri=uri, model_name=name, max_evals=1)
        registration = register_model(run.run_id, name=name, tracking_uri=uri)
    assert registration.promoted, registration.reason
    return SimpleNamespace(
        uri=uri, run_id=run.run_id, version=registration.version, features=features, workdir=workdir
    )
