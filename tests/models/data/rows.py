"""Helpers for data tests: the published header lines, CSV bytes and a preprocess run on them.

The header strings are typed here from the data notes (not imported from ``models.data.eras``), so
a mistake in the schema cannot hide behind the same mistake in its tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from models.data.outputs import output_paths
from models.data.preprocess import preprocess

HEADER_2017_Q1Q2 = (
    "trip_id,trip_start_time,trip_stop_time,trip_duration_seconds,from_station_id,from_station_name,"
    "to_station_id,to_station_name,user_type"
)
HEADER_2017_Q3Q4 = (
    "trip_id,trip_start_time,trip_stop_time,trip_duration_seconds,from_station_name,to_station_name,user_type"
)
HEADER_2018 = (
    "trip_id,trip_duration_seconds,from_station_id,trip_start_time,from_station_name,trip_stop_time,"
    "to_station_id,to_station_name,user_type"
)
HEADER_2019 = (
    "Trip Id,Trip  Duration,Start Station Id,Start Time,Start Station Name,End Station Id,End Time,"
    "End Station Name,Bike Id,User Type"
)
HEADER_2024 = HEADER_2019 + ",Model"
HEADER_2025 = (
    "Trip_Id,Trip_Duration,Start_Station_Id,Start_Time,Start_Station_Name,End_Station_Id,End_Time,"
    "End_Station_Name,Bike_Id,User_Type,Bike_Model"
)


def csv_bytes(
    header: str, rows: list[str], *, encoding: str = "utf-8", bom: bool = False, eol: str = "\n"
) -> bytes:
    """A CSV file's bytes: header, rows, a final line end."""
    text = eol.join([header, *rows]) + eol
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


def row_2025(number: int, **overrides: str) -> str:
    """One clean row of the 2025 layout (trip id ``number``); keyword overrides replace single fields."""
    fields = {
        "trip_id": str(number),
        "duration": "600",
        "start_id": "7000",
        "start": "2025-06-02 08:00:00",
        "start_name": "Bay St / College St",
        "end_id": "7010",
        "end": "2025-06-02 08:10:00",
        "end_name": "Front St W / Yonge St",
        "bike": "1234",
        "user": "Member",
        "model": "ICONIC",
    }
    fields.update(overrides)
    return ",".join(fields.values())


@dataclass
class Result:
    """A preprocess run's summary and both Parquet outputs as DataFrames."""

    summary: dict
    trips: pd.DataFrame
    quarantine: pd.DataFrame


def run_on(tmp_path: Path, files: dict[str, bytes], **options) -> Result:
    """Write ``files`` under ``tmp_path/raw`` and preprocess that folder."""
    raw = tmp_path / "raw"
    for name, data in files.items():
        target = raw / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    output = str(tmp_path / "out" / "trips.parquet")
    summary = preprocess(str(raw), output, **options)
    paths = output_paths(output)
    trips = pq.read_table(paths["output"]).to_pandas()
    quarantine = pq.read_table(paths["quarantine"]).to_pandas()
    assert summary.rows_in == summary.rows_out + summary.quarantined + summary.other_period
    assert len(trips) == summary.rows_out and len(quarantine) == summary.quarantined
    return Result(summary, trips, quarantine)
