"""The files one preprocessing run writes: the trips Parquet's layout, the quarantine, their publication.

``X.parquet`` (trips with features), ``X.quarantine.parquet`` (every rejected row with its reason),
``X.quality.json`` and ``X.quality.md``: staged in a work folder, then published whole (trips last, so
a reader that finds the trips finds their siblings too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from models.core import storage
from models.core.settings import Settings
from models.data.checks import CANONICAL_SCHEMA
from models.data.features import OUTPUT_COLUMNS, build_features
from models.data.parquet_writer import ParquetSink
from models.data.quality import render_markdown

# Dictionary-encode only the repetitive columns (names, labels, small integers): faster and smaller.
DICTIONARY_COLUMNS = [
    "start_station_id",
    "start_station_name",
    "end_station_id",
    "end_station_name",
    "bike_model",
    "user_type",
    "source_file",
    "hour",
    "weekday",
    "month",
    "is_weekend",
    "is_holiday",
    "round_trip",
]
# Min/max statistics only where a reader may filter (time ranges, ids): they cost 15% of the write.
STATISTICS_COLUMNS = ["trip_id", "start_time", "end_time"]
# Ids and times that grow row by row, and durations: delta-packed is smaller and cheaper than plain.
DELTA_COLUMNS = dict.fromkeys(
    ["trip_id", "start_time", "end_time", "duration_s", "bike_id"], "DELTA_BINARY_PACKED"
)
QUARANTINE_SCHEMA = pa.schema(
    [("source_file", pa.string()), ("era", pa.string()), ("reason", pa.string()), ("raw", pa.string())]
)


def output_schema() -> pa.Schema:
    """Canonical columns plus features, in ``OUTPUT_COLUMNS`` order."""
    empty = build_features(CANONICAL_SCHEMA.empty_table())
    return empty.select(OUTPUT_COLUMNS).schema


def output_paths(output_uri: str) -> dict[str, str]:
    """``X.parquet`` and its siblings: quarantine Parquet, JSON and Markdown quality reports."""
    base = output_uri.removesuffix(".parquet")
    return {
        "output": f"{base}.parquet",
        "quarantine": f"{base}.quarantine.parquet",
        "report": f"{base}.quality.json",
        "report_md": f"{base}.quality.md",
    }


def open_trips_sink(path: Path) -> ParquetSink:
    """The trips file, written batch by batch with the layout above."""
    return ParquetSink(
        path,
        output_schema(),
        use_dictionary=DICTIONARY_COLUMNS,
        write_statistics=STATISTICS_COLUMNS,
        column_encoding=DELTA_COLUMNS,
        store_schema=False,  # text columns then read back as strings, not dictionaries
    )


def open_quarantine_sink(path: Path) -> ParquetSink:
    """The quarantine file: source file, era, reason and the raw line of every rejected row."""
    return ParquetSink(path, QUARANTINE_SCHEMA)


def publish_outputs(
    work: Path, paths: dict[str, str], report: dict[str, Any], settings: Settings | None
) -> None:
    """Write the reports, then publish all four files atomically (trips last)."""
    (work / "quality.json").write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    (work / "quality.md").write_text(render_markdown(report), encoding="utf-8")
    storage.move_file_atomic(work / "quarantine.parquet", paths["quarantine"], settings)
    storage.move_file_atomic(work / "quality.json", paths["report"], settings)
    storage.move_file_atomic(work / "quality.md", paths["report_md"], settings)
    storage.move_file_atomic(work / "trips.parquet", paths["output"], settings)
