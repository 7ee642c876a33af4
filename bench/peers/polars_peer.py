"""The preprocessing rules in Polars: every file's lines read in parallel, checks as one expression each.

Lines are read whole (a one-column CSV) and split with ``str.splitn``, so rows with too few or too
many fields stay visible instead of failing the reader; each file's checks and parsing run as a
lazy query on Polars' thread pool, and the first failing check per row is a ``coalesce`` of
``when`` expressions in the data stage's order. Duplicates are found over the kept rows of all files
(``is_first_distinct`` in input order), features are built on the kept rows, and both outputs are
written with ``write_parquet``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl

from bench.peers import rules
from bench.peers.files import CsvInput, list_csvs, utf8_copy

NULL_TEXT = pl.lit(None, pl.String)


def read_lines(csv: CsvInput, scratch: Path) -> pl.DataFrame:
    """The file's data lines as one string column (cp1252 files through a UTF-8 copy)."""
    options = {"has_header": False, "skip_rows": 1, "separator": "\x1f", "quote_char": None}
    try:
        return pl.read_csv(csv.path, schema={"line": pl.String}, **options)
    except pl.exceptions.ComputeError:
        return pl.read_csv(utf8_copy(csv, scratch), schema={"line": pl.String}, **options)


def clean(field: str) -> pl.Expr:
    """Trimmed text; empty, NULL and NULLNULL as null."""
    text = pl.col(field).str.strip_chars()
    return pl.when(text.is_in(rules.NULL_TOKENS)).then(NULL_TEXT).otherwise(text)


def integer(field: str, *, signed: bool = False) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Value, missing and bad masks of an integer field (1-18 digits, a minus when signed)."""
    text = clean(field)
    ok = text.str.contains(r"^-?\d{1,18}$" if signed else r"^\d{1,18}$")
    return pl.when(ok).then(text).cast(pl.Int64), text.is_null(), text.is_not_null() & ~ok


def timestamp(field: str, fmt: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Value, missing and bad masks of a date-time field in the file's format."""
    text = clean(field)
    parsed = text.str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True)
    return parsed, text.is_null(), text.is_not_null() & parsed.is_null()


def pick_format(frame: pl.DataFrame, layout: rules.Layout, source: str) -> str:
    """The file's date format, decided from its start times (evidence over all of them)."""
    field = f"field_{layout.position['start_time']}"
    starts = frame.select(pl.col(field).str.strip_chars().alias("t")).filter(pl.col("t").str.contains(r"^\d"))
    slash = starts.select(
        pl.col("t").str.extract(rules.SLASH_DATE, 1).cast(pl.Int32).alias("first"),
        pl.col("t").str.extract(rules.SLASH_DATE, 2).cast(pl.Int32).alias("second"),
    )
    slashed = slash["first"].drop_nulls()
    candidates = rules.format_candidates(
        layout,
        len(slashed) >= rules.MIN_PARSED_SHARE * len(starts),
        bool((slash["first"] > 12).any()),
        bool((slash["second"] > 12).any()),
        source,
    )
    sample = starts["t"].gather_every(rules.sample_step(starts.height))

    def share_of(fmt: str) -> float:
        if sample.is_empty() or not sample.str.contains("/" if "/" in fmt else "-", literal=True).any():
            return 0.0
        years = sample.str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True).dt.year()
        return (years >= rules.MIN_YEAR).sum() / sample.len()

    return rules.pick_format(share_of, candidates, source)


def checked_file(csv: CsvInput, scratch: Path) -> pl.LazyFrame:
    """One file's rows (repaired ones last) with their canonical columns and first failing check."""
    layout, n = csv.layout, csv.layout.fields
    frame = read_lines(csv, scratch).filter(pl.col("line").is_not_null())
    frame = frame.with_columns(pl.col("line").str.splitn(",", n + 1).alias("f")).unnest("f")
    too_few, rest = pl.col(f"field_{n - 1}").is_null(), pl.col(f"field_{n}")
    odd = too_few | rest.is_not_null()
    blank = odd & (pl.col("line").str.strip_chars(rules.BLANK_CHARS) == "")
    repaired = rest.is_not_null() & (rest.str.strip_chars(rules.BLANK_CHARS) == "")
    frame = frame.filter(~blank).with_columns(repaired.alias("repaired"), (odd & ~repaired).alias("odd"))
    fmt = pick_format(frame.filter(~pl.col("odd") & ~pl.col("repaired")), layout, csv.source)
    lazy = pl.concat([frame.lazy().filter(~pl.col("repaired")), frame.lazy().filter(pl.col("repaired"))])
    columns, reason = columns_and_reason(layout, fmt)
    return (
        lazy.with_columns(columns)
        .with_columns(reason)
        .with_columns(pl.lit(csv.source).alias("source_file"))
        .select(*rules.CANONICAL_COLUMNS, "reason", "line")
    )


def columns_and_reason(layout: rules.Layout, fmt: str) -> tuple[list[pl.Expr], pl.Expr]:
    """The canonical columns and the checks (as columns), then the reason of each row (null: kept).

    Masks are computed once as columns and the reason reads them, in the data stage's check order.
    """
    at = {name: f"field_{i}" for name, i in layout.position.items()}
    columns: dict[str, pl.Expr] = {}
    checks: list[tuple[str, str | pl.Expr]] = [("odd", "field_count"), ("long_field", "field_too_long")]
    columns["long_field"] = pl.any_horizontal(
        pl.col(f).str.len_bytes() > rules.MAX_FIELD_BYTES for f in at.values()
    )
    parsers = (("trip_id", "trip_id", integer), ("start_time", "start_time", timestamp))
    parsers += (("end_time", "end_time", timestamp), ("duration_s", "duration", integer))
    for name, label, parse in parsers:
        if parse is timestamp:
            value, missing, bad = timestamp(at[name], fmt)
        else:
            value, missing, bad = integer(at[name], signed=name == "duration_s")
        columns |= {name: value, f"missing_{label}": missing, f"bad_{label}": bad}
        checks += [(f"missing_{label}", f"missing_{label}"), (f"bad_{label}", f"bad_{label}")]
    for side in ("start", "end"):
        name = clean(at[f"{side}_station_name"]).str.replace_all("\t", " ", literal=True)
        columns[f"{side}_station_name"] = name.str.replace_all(" {2,}", " ")
        if layout.has_station_ids:
            ids, missing, bad = integer(at[f"{side}_station_id"])
            columns |= {f"{side}_id_missing": missing, f"{side}_id_bad": bad}
            checks += [(f"{side}_id_missing", "missing_station_id"), (f"{side}_id_bad", "bad_station_id")]
        else:
            ids = pl.lit(None, pl.Int64)
            columns[f"{side}_name_missing"] = clean(at[f"{side}_station_name"]).is_null()
            checks.append((f"{side}_name_missing", "missing_station"))
        columns[f"{side}_station_id"] = ids
    columns["label_text"] = clean(at["user_type"])
    columns["user_type"] = (
        clean(at["user_type"])
        .str.to_lowercase()
        .replace_strict(rules.LABELS, default=None, return_dtype=pl.String)
    )
    columns["bike_id"] = integer(at["bike_id"])[0] if "bike_id" in at else pl.lit(None, pl.Int64)
    columns["bike_model"] = clean(at["bike_model"]) if "bike_model" in at else NULL_TEXT
    duration, text = pl.col("duration_s"), pl.col("label_text")
    reason = pl.when(False).then(NULL_TEXT)
    for column, label in checks:
        reason = reason.when(pl.col(column)).then(pl.lit(label))
    reason = (
        reason.when(text.is_null())
        .then(pl.lit("missing_user_type"))
        .when(pl.col("user_type").is_null())
        .then(pl.concat_str(pl.lit("unknown_user_type:"), text))
        .when(duration <= 0)
        .then(pl.lit("nonpositive_duration"))
        .when(duration > rules.MAX_DURATION_S)
        .then(pl.lit("too_long"))
        .when(pl.col("end_time") < pl.col("start_time"))
        .then(pl.lit("end_before_start"))
        .when(duration < rules.MIN_DURATION_S)
        .then(pl.lit("too_short"))
        .otherwise(NULL_TEXT)
    )
    return [expr.alias(name) for name, expr in columns.items()], reason.alias("reason")


def add_features(trips: pl.DataFrame) -> pl.DataFrame:
    """Hour, weekday (Monday 0), month, weekend, Ontario holiday, round trip (by id, else by name)."""
    start = pl.col("start_time")
    years = trips.select(start.dt.year().unique().drop_nulls())["start_time"].to_list()
    same_id = pl.col("start_station_id") == pl.col("end_station_id")
    same_name = pl.col("start_station_name") == pl.col("end_station_name")
    return trips.with_columns(
        start.dt.hour().cast(pl.Int8).alias("hour"),
        (start.dt.weekday() - 1).cast(pl.Int8).alias("weekday"),
        start.dt.month().cast(pl.Int8).alias("month"),
        (start.dt.weekday() >= 6).fill_null(False).cast(pl.Int8).alias("is_weekend"),
        start.dt.date().is_in(rules.holiday_dates(years)).fill_null(False).cast(pl.Int8).alias("is_holiday"),
        pl.coalesce(same_id, same_name).fill_null(False).cast(pl.Int8).alias("round_trip"),
    )


def clean_input(input_dir: str | Path, output: str | Path) -> dict[str, object]:
    """Clean every CSV under ``input_dir``; write trips and quarantine Parquet; return the counts."""
    with tempfile.TemporaryDirectory(prefix="bench-polars-") as tmp:
        scratch = Path(tmp)
        files = list_csvs(input_dir, scratch)
        checked = pl.concat([checked_file(csv, scratch) for csv in files]).collect()
    kept = checked.filter(pl.col("reason").is_null())
    repeated = ~kept["trip_id"].is_first_distinct()
    trips = add_features(kept.filter(~repeated)).select(rules.OUTPUT_COLUMNS)
    quarantine = pl.concat(
        [
            checked.filter(pl.col("reason").is_not_null()).select("source_file", "reason", raw="line"),
            kept.filter(repeated).select("source_file", reason=pl.lit("duplicate_trip_id"), raw="line"),
        ]
    )
    trips.write_parquet(output)
    quarantine.write_parquet(str(output).removesuffix(".parquet") + ".quarantine.parquet")
    reasons = quarantine.group_by(pl.col("reason").str.split(":").list.first()).len()
    return rules.summary(trips.height, dict(reasons.iter_rows()))
