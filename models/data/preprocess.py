"""Raw ridership CSV/ZIP files (local or s3://) -> canonical trips with features, as Parquet.

    python -m models preprocess --input data/sample --output /tmp/trips.parquet [--period 2025]

Each file's era is detected from its header and its date format from its values; rows stream
through in pyarrow record batches and are written batch by batch, so a whole year never sits in
memory. With ``--period``, rows that start in another period are skipped and only counted
(``other_period``). Every other input row ends up either in ``X.parquet`` or in
``X.quarantine.parquet`` (with a ``reason``); ``X.quality.json`` and ``X.quality.md`` describe the
run. The last stdout line is the summary as JSON, and ``rows_in == rows_out + quarantined +
other_period`` always holds.

Times (``start_time``, ``end_time``) are naive local Toronto wall-clock times (America/Toronto),
exactly as published: no offset is attached, so DST gaps and repeats are kept as they are.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from models.core.contracts import PreprocessSummary
from models.core.errors import UserError
from models.core.names import DEFAULT_MIN_DURATION_S
from models.core.periods import check_period
from models.core.settings import Settings
from models.data.checks import Checked, check_batch, count_true, mark_duplicates
from models.data.duplicates import SeenIds
from models.data.eras import Era
from models.data.features import OUTPUT_COLUMNS, build_features, calendar
from models.data.memory_pool import streaming_memory_pool
from models.data.outputs import (
    QUARANTINE_SCHEMA,
    open_quarantine_sink,
    open_trips_sink,
    output_paths,
    publish_outputs,
)
from models.data.parquet_writer import ParquetSink
from models.data.period_rows import split_period
from models.data.quality import (
    FileStats,
    QualityTracker,
    build_report,
    build_summary,
    month_label_keys,
)
from models.data.read_ahead import OpenedFile, opened_files

log = logging.getLogger(__name__)

FIELD_COUNT = "field_count"


@dataclass
class Run:
    """Everything one run writes to or counts into while files stream past."""

    trips: ParquetSink
    quarantine: ParquetSink
    tracker: QualityTracker
    seen: SeenIds


@dataclass(frozen=True)
class Prepared:
    """A batch worked on in the prepare thread: all that needs no state of the run."""

    raw: pa.RecordBatch  # the strings as read (rows of the period only), for the quarantine
    checked: Checked
    reasons: pa.Array  # the checks' reasons (duplicates are found in order)
    trips: pa.Table  # canonical columns and features, every row of the period
    label_keys: pa.Array  # month and label of each row, for the quality report
    other_period: int  # rows of the batch that start in another period: skipped, counted


def prepare_batch(
    opened: OpenedFile, batch: pa.RecordBatch, *, period: str | None, min_duration_s: int
) -> Prepared:
    """Skip other periods' rows, check the rest and build their features (prepare thread: no shared state)."""
    rows = split_period(batch, opened.era, opened.fmt, period)
    checked = check_batch(rows.batch, opened.era, opened.fmt, opened.source, min_duration_s, rows.start)
    cal = calendar(checked.trips["start_time"])
    trips = build_features(checked.trips, cal).select(OUTPUT_COLUMNS)
    keys = month_label_keys(cal.year, cal.month, trips["user_type"].combine_chunks())
    return Prepared(rows.batch, checked, checked.reasons, trips, keys, rows.other_period)


def route_batch(run: Run, prepared: Prepared, source: str, era: Era) -> None:
    """Duplicates (in input order); kept rows to trips, others to quarantine; counts to the tracker."""
    checked = prepared.checked
    reasons = mark_duplicates(prepared.reasons, prepared.trips["trip_id"].combine_chunks(), run.seen)
    all_kept = reasons.null_count == len(reasons)
    kept = None if all_kept else pc.is_null(reasons)
    run.trips.write(prepared.trips if all_kept else prepared.trips.filter(kept))
    if not all_kept:
        dropped = pc.invert(kept)
        raw = pc.binary_join_element_wise(*prepared.raw.filter(dropped).columns, ",", null_handling="replace")
        write_quarantine(run, source, era.name, reasons.filter(dropped), raw)
    run.tracker.add_reasons(source, reasons)
    run.tracker.add_other_period(source, prepared.other_period)
    run.tracker.add_label_keys(prepared.label_keys if all_kept else prepared.label_keys.filter(kept))
    for column, mask in (("station_name", checked.null_name), ("bike_id", checked.null_bike)):
        if mask is not None:
            run.tracker.kept_with_nulls[column] += count_true(mask if all_kept else pc.and_(kept, mask))


def write_quarantine(run: Run, source: str, era: str, reasons: pa.Array, raw: pa.Array) -> None:
    """Append quarantined rows with their file, era, reason and original text."""
    size = len(reasons)
    table = pa.Table.from_arrays(
        [pa.repeat(pa.scalar(source), size), pa.repeat(pa.scalar(era), size), reasons, raw],
        schema=QUARANTINE_SCHEMA,
    )
    run.quarantine.write(table)


def process_file(run: Run, opened: OpenedFile) -> str:
    """Stream one CSV into the run; returns its digest."""
    era, source = opened.era, opened.source
    stats = FileStats(
        era=era.name, encoding=opened.head.encoding, bom=opened.head.bom, time_format=opened.fmt
    )
    run.tracker.files[source] = stats
    for prepared in opened.batches:  # the repaired rows come last, once the reader is exhausted
        route_batch(run, prepared, source, era)
    if opened.odd.broken:
        broken = pa.array(opened.odd.broken, pa.string())
        reasons = pa.repeat(pa.scalar(FIELD_COUNT), len(broken))
        write_quarantine(run, source, era.name, reasons, broken)
        run.tracker.add_reasons(source, reasons)
    stats.encoding = opened.head.decoder.encoding  # cp1252 if a later batch was not UTF-8
    stats.digest, lines = opened.scan or ("", 0)
    stats.repaired_rows = len(opened.odd.repaired)
    stats.blank_lines = max(0, lines - 1 - stats.rows_in)  # lines that held no row
    if stats.rows_in == 0:
        raise UserError(f"File {source} has a header but no data rows (a truncated download?).")
    return stats.digest


def combine_digests(digests: dict[str, str]) -> str:
    """One digest for the whole input: SHA-256 over each file's name and digest, in name order."""
    joined = "\n".join(f"{name}\t{digest}" for name, digest in sorted(digests.items()))
    return f"sha256:{hashlib.sha256(joined.encode()).hexdigest()}"


def check_options(period: str | None, min_duration_s: int) -> None:
    """Reject a malformed period or a negative minimum duration."""
    if period is not None:
        check_period(period)
    if min_duration_s < 0:
        raise UserError(f"Minimum duration {min_duration_s} s is negative.")


def preprocess(
    input_uri: str,
    output_uri: str,
    *,
    period: str | None = None,
    min_duration_s: int = DEFAULT_MIN_DURATION_S,
    settings: Settings | None = None,
    inputs: Sequence[str] | None = None,
) -> PreprocessSummary:
    """Read every CSV of the input (only the ``inputs`` under it when given: a month run's files),
    write trips, quarantine and quality reports; return the summary."""
    check_options(period, min_duration_s)
    paths = output_paths(str(output_uri))
    with streaming_memory_pool(), tempfile.TemporaryDirectory(prefix="to-bikes-preprocess-") as tmp:
        work = Path(tmp)
        digests: dict[str, str] = {}
        prepare = partial(prepare_batch, period=period, min_duration_s=min_duration_s)
        with (
            open_trips_sink(work / "trips.parquet") as trips,
            open_quarantine_sink(work / "quarantine.parquet") as quarantine,
            closing(opened_files(str(input_uri), work / "inputs", settings, prepare, inputs)) as files,
        ):
            run = Run(trips, quarantine, QualityTracker(), SeenIds())
            for opened in files:
                digests[opened.source] = process_file(run, opened)
        extra = {"input": str(input_uri), "input_digest": combine_digests(digests), "period": period}
        summary = build_summary(run.tracker, min_duration_s=min_duration_s, **extra, **paths)
        publish_outputs(work, paths, build_report(run.tracker, summary), settings)
    return summary
