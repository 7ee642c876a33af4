"""The bench's peers (bench/peers/) keep the same rows with the same feature values as
models.data.preprocess, and quarantine the same rows for the same reasons.

Runs in the model environment with requirements/bench.txt on top (``make test-models`` installs it):
without Polars or DuckDB this module fails to import instead of skipping.
"""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

try:
    import duckdb  # noqa: F401
    import polars  # noqa: F401
except ImportError as exc:  # loud, never a skip: the peers are part of `make bench`
    raise ImportError(f"{exc}; install requirements/bench.txt into .venv (make bench-deps)") from exc

from bench.peer_runs import correctness
from bench.peers import PEERS
from models.data.preprocess import preprocess
from models.sample.generate import generate_sample

pytestmark = pytest.mark.unit

ROWS = 3_000
HEADER_2025 = (
    "Trip_Id,Trip_Duration,Start_Station_Id,Start_Time,Start_Station_Name,End_Station_Id,"
    "End_Time,End_Station_Name,Bike_Id,User_Type,Bike_Model"
)


def trip(number: int, **changes: str) -> str:
    """One 2025-era line; ``changes`` replace fields by canonical name."""
    values = {
        "trip_id": str(1000 + number),
        "duration_s": "600",
        "start_station_id": "7001",
        "start_time": f"2025-03-{number % 28 + 1:02d} 08:15:00",
        "start_station_name": "Bay St / College St",
        "end_station_id": "7002",
        "end_time": f"2025-03-{number % 28 + 1:02d} 08:25:00",
        "end_station_name": "Church St  / Wood St ",
        "bike_id": "42",
        "user_type": "Member",
        "bike_model": "ICONIC",
    }
    values.update(changes)
    order = ["trip_id", "duration_s", "start_station_id", "start_time", "start_station_name"]
    order += ["end_station_id", "end_time", "end_station_name", "bike_id", "user_type", "bike_model"]
    return ",".join(values[name] for name in order)


def write_odd_rows(folder: Path) -> Path:
    """Reasons the generated sample has none of: long field, bad times and durations, missing label."""
    lines = [trip(i) for i in range(60)]
    lines += [
        trip(61, start_station_name="x" * 1200),
        trip(62, start_time="2025-02-30 08:00:00"),
        trip(63, end_time="soon"),
        trip(64, duration_s=""),
        trip(65, duration_s="6OO"),
        trip(66, user_type="NULL"),
        trip(67, user_type="Annual Member", start_station_name="NULL"),
        trip(68, trip_id="1003"),  # a duplicate of trip 3
        trip(69) + ",,",  # repaired
        "",
        "   ",
    ]
    path = folder / "odd" / "2025-03.csv"
    path.parent.mkdir(parents=True)
    path.write_text(HEADER_2025 + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path.parent


def kept_rows(path: Path, columns: list[str]) -> list[dict[str, Any]]:
    """The kept rows as Python values (a timestamp in ms or us reads the same), by file and trip id."""
    rows = pq.read_table(path, columns=columns).to_pylist()
    return sorted(rows, key=lambda row: (row["source_file"], row["trip_id"]))


def quarantined_rows(path: Path) -> Counter[tuple[str, str, str]]:
    """(file, raw line, reason) of every quarantined row."""
    rows = pq.read_table(path, columns=["source_file", "raw", "reason"]).to_pylist()
    return Counter((row["source_file"], row["raw"], row["reason"]) for row in rows)


def first_difference(found: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str:
    for peer_row, models_row in zip(found, expected, strict=False):
        if peer_row != models_row:
            changed = {k: (peer_row[k], v) for k, v in models_row.items() if peer_row[k] != v}
            return f"trip {models_row['trip_id']} (peer, models): {changed}"
    return f"{len(found)} rows, models {len(expected)}"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("peers")
    generate_sample(root / "sample", seed=7, rows=ROWS)
    return {"sample": root / "sample", "odd": write_odd_rows(root)}


@pytest.mark.parametrize("name", ["sample", "odd"])
@pytest.mark.parametrize("engine", PEERS)
def test_peer_keeps_and_quarantines_the_same_rows_as_models(inputs, tmp_path, engine, name):
    expected = preprocess(str(inputs[name]), str(tmp_path / "models.parquet")).to_dict()
    columns = pq.read_schema(tmp_path / "models.parquet").names
    peer = importlib.import_module(f"bench.peers.{engine}_peer")
    output = tmp_path / f"{engine}.parquet"
    found = peer.clean_input(inputs[name], output)
    assert correctness(found, expected) == "yes", (found, expected["by_reason"])
    assert pq.ParquetFile(output).metadata.num_rows == found["rows_out"]
    quarantine = pq.ParquetFile(tmp_path / f"{engine}.quarantine.parquet")
    assert quarantine.metadata.num_rows == found["quarantined"]
    peer_rows, models_rows = kept_rows(output, columns), kept_rows(tmp_path / "models.parquet", columns)
    ids = [(row["source_file"], row["trip_id"]) for row in peer_rows]
    assert ids == [(row["source_file"], row["trip_id"]) for row in models_rows], "not the same trips kept"
    assert peer_rows == models_rows, first_difference(peer_rows, models_rows)
    peer_quarantine = quarantined_rows(tmp_path / f"{engine}.quarantine.parquet")
    models_quarantine = quarantined_rows(tmp_path / "models.quarantine.parquet")
    assert peer_quarantine == models_quarantine, (
        peer_quarantine - models_quarantine,
        models_quarantine - peer_quarantine,
    )
    assert pq.read_schema(output).names[-6:] == [
        "hour",
        "weekday",
        "month",
        "is_weekend",
        "is_holiday",
        "round_trip",
    ]


def test_correctness_names_the_reasons_that_differ():
    models = {"rows_in": 10, "rows_out": 7, "by_reason": {"too_short": 2, "unknown_user_type:X": 1}}
    peer = {"rows_in": 10, "rows_out": 8, "by_reason": {"too_short": 1, "unknown_user_type:Y": 1}}
    assert correctness(peer, models) == "no (rows_out, too_short)"
    assert correctness(models, models) == "yes"
