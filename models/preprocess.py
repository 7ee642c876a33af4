"""Raw ridership CSV/ZIP files (local or s3://) -> canonical trips with features, as Parquet.

    python -m models.preprocess --input data/sample --output /tmp/trips.parquet [--period 2025]

Each file's era is detected from its header and its date format from its values; rows stream
through in pyarrow record batches and are written batch by batch, so a whole year never sits in
memory. Every input row ends up either in ``X.parquet`` or in ``X.quarantine.parquet`` (with a
``reason``); ``X.quality.json`` and ``X.quality.md`` describe the run. The last stdout line is the
summary as JSON, and ``rows_in == rows_out + quarantined`` always holds.

Times (``start_time``, ``end_time``) are naive local Toronto wall-clock times (America/Toronto),
exactly as published: no offset is attached, so DST gaps and repeats are kept as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models import storage
from models.clean import CANONICAL_SCHEMA, Checked, check_batch, count_true, mark_duplicates, period_outside
from models.dedupe import SeenIds
from models.errors import UserError, run_cli
from models.features import OUTPUT_COLUMNS, build_features
from models.quality import FileStats, QualityTracker, build_report, build_summary, render_markdown
from models.readers import CsvFile, OddRows, iter_csv_files, read_batches, scan_file
from models.schema import Era, detect_era
from models.settings import Settings
from models.timeparse import MONTH_FIRST, choose_format

log = logging.getLogger(__name__)

PERIOD_PATTERN = re.compile(r"^\d{4}(-(0[1-9]|1[0-2]))?$")
SAMPLE_VALUES = 20_000
FIELD_COUNT = "field_count"
QUARANTINE_SCHEMA = pa.schema(
    [("source_file", pa.string()), ("era", pa.string()), ("reason", pa.string()), ("raw", pa.string())]
)


@dataclass
class Run:
    """Everything one run writes to or counts into while files stream past."""

    trips: pq.ParquetWriter
    quarantine: pq.ParquetWriter
    tracker: QualityTracker
    seen: SeenIds
    period: str | None
    min_duration_s: int


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


def route_batch(run: Run, checked: Checked, source: str, era: Era) -> None:
    """Final reasons (period, duplicates) for a checked batch; kept rows to trips, others to quarantine."""
    reasons = checked.reasons
    outside = period_outside(checked.trips["start_time"].combine_chunks(), run.period)
    if outside is not None:
        reasons = pc.coalesce(reasons, pc.if_else(outside, "outside_period", pa.scalar(None, pa.string())))
    reasons = mark_duplicates(reasons, checked.trips["trip_id"].combine_chunks(), run.seen)
    kept = pc.is_null(reasons)
    trips = build_features(checked.trips.filter(kept)).select(OUTPUT_COLUMNS)
    run.trips.write_table(trips)
    dropped = pc.invert(kept)
    if count_true(dropped):
        write_quarantine(run, source, era.name, reasons.filter(dropped), checked.raw.filter(dropped))
    run.tracker.add_reasons(source, reasons)
    run.tracker.add_labels(trips["start_time"].combine_chunks(), trips["user_type"].combine_chunks())
    run.tracker.kept_with_nulls["station_name"] += count_true(pc.and_(kept, checked.null_name))
    run.tracker.kept_with_nulls["bike_id"] += count_true(pc.and_(kept, checked.null_bike))


def write_quarantine(run: Run, source: str, era: str, reasons: pa.Array, raw: pa.Array) -> None:
    """Append quarantined rows with their file, era, reason and original text."""
    size = len(reasons)
    table = pa.Table.from_arrays(
        [pa.repeat(pa.scalar(source), size), pa.repeat(pa.scalar(era), size), reasons, raw],
        schema=QUARANTINE_SCHEMA,
    )
    run.quarantine.write_table(table)


def sample_start_times(first: pa.RecordBatch | None, csv_file: CsvFile, era: Era, encoding: str) -> pa.Array:
    """Start times to decide the format from: the first batch, or the whole column for 2017 Q1-Q2."""
    column = next(name for name, canonical in era.columns.items() if canonical == "start_time")
    if era.day_first_possible:
        odd = OddRows(expected=len(era.header))
        values = [batch.column(column) for batch in read_batches(csv_file, era, encoding, odd)]
        chunked = pa.chunked_array(values, pa.string()).combine_chunks()
    else:
        chunked = first.column(column) if first is not None else pa.array([], pa.string())
    values = pc.utf8_trim_whitespace(chunked)
    values = values.filter(pc.match_substring_regex(values, r"^\d"))
    if not era.day_first_possible and len(values) > SAMPLE_VALUES:
        values = values.take(pa.array(range(0, len(values), len(values) // SAMPLE_VALUES + 1)))
    return values


def process_file(run: Run, csv_file: CsvFile) -> str:
    """Stream one CSV into the run; returns its digest."""
    scan = scan_file(csv_file.path, csv_file.source)
    era = detect_era(scan.header, csv_file.source)
    odd = OddRows(expected=len(era.header))
    batches = read_batches(csv_file, era, scan.encoding, odd)
    first = next(batches, None)
    sample = sample_start_times(first, csv_file, era, scan.encoding)
    fmt = (
        choose_format(sample, csv_file.source, day_first_possible=era.day_first_possible)
        if len(sample)
        else MONTH_FIRST[0]
    )
    stats = FileStats(era=era.name, encoding=scan.encoding, bom=scan.bom, time_format=fmt, digest=scan.digest)
    run.tracker.files[csv_file.source] = stats
    log.info(
        "%s: era %s, %s%s, times %s",
        csv_file.source,
        era.name,
        scan.encoding,
        " (BOM)" if scan.bom else "",
        fmt,
    )
    for batch in [first] if first is not None else []:
        route_batch(
            run, check_batch(batch, era, fmt, csv_file.source, run.min_duration_s), csv_file.source, era
        )
    for batch in batches:
        route_batch(
            run, check_batch(batch, era, fmt, csv_file.source, run.min_duration_s), csv_file.source, era
        )
    repaired = odd.repaired_batch(list(era.header))
    if repaired is not None:
        route_batch(
            run, check_batch(repaired, era, fmt, csv_file.source, run.min_duration_s), csv_file.source, era
        )
    if odd.broken:
        broken = pa.array(odd.broken, pa.string())
        write_quarantine(
            run, csv_file.source, era.name, pa.repeat(pa.scalar(FIELD_COUNT), len(broken)), broken
        )
        run.tracker.add_reasons(csv_file.source, pa.repeat(pa.scalar(FIELD_COUNT), len(broken)))
    stats.blank_lines, stats.repaired_rows = scan.blank_lines + odd.blank, len(odd.repaired)
    return scan.digest


def combine_digests(digests: dict[str, str]) -> str:
    """One digest for the whole input: SHA-256 over each file's name and digest, in name order."""
    joined = "\n".join(f"{name}\t{digest}" for name, digest in sorted(digests.items()))
    return f"sha256:{hashlib.sha256(joined.encode()).hexdigest()}"


def check_options(period: str | None, min_duration_s: int) -> None:
    """Reject a malformed period or a negative minimum duration."""
    if period is not None and not PERIOD_PATTERN.match(period):
        raise UserError(f"Period {period!r} is not YYYY or YYYY-MM.")
    if min_duration_s < 0:
        raise UserError(f"Minimum duration {min_duration_s} s is negative.")


def preprocess(
    input_uri: str,
    output_uri: str,
    *,
    period: str | None = None,
    min_duration_s: int = 60,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Read every CSV of the input, write trips, quarantine and quality reports; return the summary."""
    check_options(period, min_duration_s)
    paths = output_paths(str(output_uri))
    with tempfile.TemporaryDirectory(prefix="to-bikes-preprocess-") as tmp:
        work = Path(tmp)
        digests: dict[str, str] = {}
        with (
            pq.ParquetWriter(work / "trips.parquet", output_schema()) as trips,
            pq.ParquetWriter(work / "quarantine.parquet", QUARANTINE_SCHEMA) as quarantine,
        ):
            run = Run(trips, quarantine, QualityTracker(), SeenIds(), period, min_duration_s)
            for csv_file in iter_csv_files(str(input_uri), work / "inputs", settings):
                digests[csv_file.source] = process_file(run, csv_file)
        extra = {"input": str(input_uri), "input_digest": combine_digests(digests), "period": period}
        summary = build_summary(run.tracker, min_duration_s=min_duration_s, **extra, **paths)
        publish_outputs(work, paths, build_report(run.tracker, summary), settings)
    return summary


def publish_outputs(
    work: Path, paths: dict[str, str], report: dict[str, Any], settings: Settings | None
) -> None:
    """Write the reports, then publish all four files atomically (trips last)."""
    (work / "quality.json").write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    (work / "quality.md").write_text(render_markdown(report), encoding="utf-8")
    storage.write_file_atomic(work / "quarantine.parquet", paths["quarantine"], settings)
    storage.write_file_atomic(work / "quality.json", paths["report"], settings)
    storage.write_file_atomic(work / "quality.md", paths["report_md"], settings)
    storage.write_file_atomic(work / "trips.parquet", paths["output"], settings)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m models.preprocess", description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="a CSV, a ZIP or a folder of them (path or s3:// URI)")
    parser.add_argument("--output", required=True, help="output Parquet (path or s3:// URI)")
    parser.add_argument("--period", help="keep only trips starting in YYYY or YYYY-MM (others quarantined)")
    parser.add_argument(
        "--min-duration", type=int, default=60, help="shortest trip kept, seconds (default 60)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Preprocess once and print the summary as the last stdout line."""
    args = parse_args(argv)
    summary = preprocess(args.input, args.output, period=args.period, min_duration_s=args.min_duration)
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
