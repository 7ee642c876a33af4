"""The preprocessing rules in vectorized pandas: whole-column string methods, no ``apply``.

Lines are read with the pyarrow engine (multi-threaded) as one column and split with
``str.split(n=..., expand=True)``, so rows with a wrong field count stay visible; integers are
checked with ``str.fullmatch``, times parsed with ``pd.to_datetime(format=..., errors="coerce")``,
labels mapped with ``Series.map``, and ``np.select`` gives each row the first failing check in the
data stage's order. Duplicates are ``Series.duplicated`` over the kept rows of all files; features
come from the ``.dt`` accessor; both outputs are written with ``to_parquet``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.peers import rules
from bench.peers.files import CsvInput, list_csvs, utf8_copy


def read_lines(csv: CsvInput, scratch: Path) -> pd.Series:
    """The file's data lines (blank ones dropped by the reader; cp1252 files through a UTF-8 copy)."""
    options = {"sep": "\x1f", "header": None, "skiprows": 1, "names": ["line"], "dtype": str}
    try:
        return pd.read_csv(csv.path, engine="pyarrow", keep_default_na=False, **options)["line"]
    except ValueError:  # UnicodeDecodeError and pyarrow's ArrowInvalid both are ValueErrors
        return pd.read_csv(utf8_copy(csv, scratch), engine="pyarrow", keep_default_na=False, **options)[
            "line"
        ]


def clean(values: pd.Series) -> pd.Series:
    """Trimmed text; empty, NULL and NULLNULL as missing."""
    text = values.str.strip()
    return text.mask(text.isin(rules.NULL_TOKENS))


def integer(values: pd.Series, *, signed: bool = False) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Value (Int64), missing and bad masks of an integer column (1-18 digits, a minus when signed)."""
    text = clean(values)
    ok = text.str.fullmatch(r"-?\d{1,18}" if signed else r"\d{1,18}").fillna(False).astype(bool)
    missing = text.isna().to_numpy()
    return pd.to_numeric(text.where(ok)).astype("Int64"), missing, ~missing & ~ok.to_numpy()


def timestamp(values: pd.Series, fmt: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Value, missing and bad masks of a date-time column in the file's format."""
    text = clean(values)
    parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    missing = text.isna().to_numpy()
    return parsed, missing, ~missing & parsed.isna().to_numpy()


def pick_format(starts: pd.Series, layout: rules.Layout, source: str) -> str:
    """The file's date format: day-first evidence over all start times, formats tried on a sample."""
    starts = starts.str.strip()
    starts = starts[starts.str.match(r"\d").fillna(False).astype(bool)]
    parts = starts.str.extract(rules.SLASH_DATE).astype(float)
    candidates = rules.format_candidates(
        layout,
        parts[0].notna().sum() >= rules.MIN_PARSED_SHARE * len(starts),
        bool((parts[0] > 12).any()),
        bool((parts[1] > 12).any()),
        source,
    )
    sample = starts.iloc[:: rules.sample_step(len(starts))]

    def share_of(fmt: str) -> float:
        if sample.empty or not sample.str.contains("/" if "/" in fmt else "-", regex=False).any():
            return 0.0
        years = pd.to_datetime(sample, format=fmt, errors="coerce").dt.year
        return float((years >= rules.MIN_YEAR).sum() / len(sample))

    return rules.pick_format(share_of, candidates, source)


def shape_rows(lines: pd.Series, n: int) -> pd.DataFrame:
    """Fields 0..n-1, the remainder in column n, and the repaired/odd flags; blank lines dropped."""
    parts = lines.str.split(",", n=n, expand=True)
    for missing in range(parts.shape[1], n + 1):  # no row had that many fields
        parts[missing] = pd.Series(None, index=parts.index, dtype=lines.dtype)
    too_few, rest = parts[n - 1].isna(), parts[n]
    odd = too_few | rest.notna()
    blank = odd & (lines.str.strip(rules.BLANK_CHARS) == "")
    parts["repaired"] = (rest.notna() & (rest.str.strip(rules.BLANK_CHARS) == "")).astype(bool)
    parts["odd"] = (odd & ~parts["repaired"]).astype(bool)
    parts["line"] = lines
    if blank.any():
        parts = parts[~blank.astype(bool)]
    if not parts["repaired"].any():
        return parts
    return pd.concat([parts[~parts["repaired"]], parts[parts["repaired"]]])


def checked_file(csv: CsvInput, scratch: Path) -> pd.DataFrame:
    """One file's rows (repaired ones last): canonical columns and the first failing check."""
    layout = csv.layout
    parts = shape_rows(read_lines(csv, scratch), layout.fields)
    col = {name: parts[i] for name, i in layout.position.items()}
    normal = ~parts["odd"] & ~parts["repaired"]
    fmt = pick_format(col["start_time"][normal], layout, csv.source)
    out = pd.DataFrame(index=parts.index)
    out["trip_id"], trip_missing, trip_bad = integer(col["trip_id"])
    out["start_time"], start_missing, start_bad = timestamp(col["start_time"], fmt)
    out["end_time"], end_missing, end_bad = timestamp(col["end_time"], fmt)
    out["duration_s"], duration_missing, duration_bad = integer(col["duration_s"], signed=True)
    long_field = np.column_stack(
        [c.str.len().fillna(0).to_numpy() > rules.MAX_FIELD_BYTES for c in col.values()]
    )
    checks = [
        (parts["odd"].to_numpy(), "field_count"),
        (long_field.any(axis=1), "field_too_long"),
        (trip_missing, "missing_trip_id"),
        (trip_bad, "bad_trip_id"),
        (start_missing, "missing_start_time"),
        (start_bad, "bad_start_time"),
        (end_missing, "missing_end_time"),
        (end_bad, "bad_end_time"),
        (duration_missing, "missing_duration"),
        (duration_bad, "bad_duration"),
    ]
    checks += station_checks(out, col, layout)
    checks += label_checks(out, col["user_type"])
    duration = out["duration_s"]
    checks += [
        ((duration <= 0).fillna(False).to_numpy(bool), "nonpositive_duration"),
        ((duration > rules.MAX_DURATION_S).fillna(False).to_numpy(bool), "too_long"),
        ((out["end_time"] < out["start_time"]).to_numpy(), "end_before_start"),
        ((duration < rules.MIN_DURATION_S).fillna(False).to_numpy(bool), "too_short"),
    ]
    out["bike_id"] = integer(col["bike_id"])[0] if "bike_id" in col else pd.array([pd.NA] * len(out), "Int64")
    out["bike_model"] = clean(col["bike_model"]) if "bike_model" in col else None
    out["source_file"] = csv.source
    out["reason"] = np.select([mask for mask, _ in checks], [reason for _, reason in checks], None)
    out["line"] = parts["line"]
    return out


def station_checks(out: pd.DataFrame, col: dict[str, pd.Series], layout: rules.Layout) -> list:
    """Station ids and names; eras without ids need both names."""
    checks = []
    for side in ("start", "end"):
        name = clean(col[f"{side}_station_name"])
        out[f"{side}_station_name"] = name.str.replace("\t", " ").str.replace(r" {2,}", " ", regex=True)
        if layout.has_station_ids:
            out[f"{side}_station_id"], missing, bad = integer(col[f"{side}_station_id"])
            checks += [(missing, "missing_station_id"), (bad, "bad_station_id")]
        else:
            out[f"{side}_station_id"] = pd.array([pd.NA] * len(out), "Int64")
            checks.append((name.isna().to_numpy(), "missing_station"))
    return checks


def label_checks(out: pd.DataFrame, values: pd.Series) -> list:
    """member/casual from every published spelling; missing and unknown labels flagged."""
    text = clean(values)
    out["user_type"] = text.str.lower().map(rules.LABELS)
    missing = text.isna().to_numpy()
    unknown = ~missing & out["user_type"].isna().to_numpy()
    return [(missing, "missing_user_type"), (unknown, ("unknown_user_type:" + text.fillna("")).to_numpy())]


def add_features(trips: pd.DataFrame) -> pd.DataFrame:
    """Hour, weekday (Monday 0), month, weekend, Ontario holiday, round trip (by id, else by name)."""
    start = trips["start_time"]
    holidays = pd.to_datetime(rules.holiday_dates(start.dt.year.dropna().astype(int).unique().tolist()))
    by_id = trips["start_station_id"] == trips["end_station_id"]
    by_name = trips["start_station_name"] == trips["end_station_name"]
    return trips.assign(
        hour=start.dt.hour.astype("int8"),
        weekday=start.dt.day_of_week.astype("int8"),
        month=start.dt.month.astype("int8"),
        is_weekend=(start.dt.day_of_week >= 5).astype("int8"),
        is_holiday=start.dt.normalize().isin(holidays).astype("int8"),
        round_trip=by_id.fillna(by_name).fillna(False).astype("int8"),
    )


def clean_input(input_dir: str | Path, output: str | Path) -> dict[str, object]:
    """Clean every CSV under ``input_dir``; write trips and quarantine Parquet; return the counts."""
    with tempfile.TemporaryDirectory(prefix="bench-pandas-") as tmp:
        scratch = Path(tmp)
        checked = pd.concat(
            [checked_file(csv, scratch) for csv in list_csvs(input_dir, scratch)], ignore_index=True
        )
    dropped = checked["reason"].notna()
    kept = checked[~dropped]
    repeated = kept["trip_id"].duplicated()
    trips = add_features(kept[~repeated])[list(rules.OUTPUT_COLUMNS)]
    quarantine = pd.concat(
        [
            checked.loc[dropped, ["source_file", "reason", "line"]],
            kept.loc[repeated, ["source_file", "line"]].assign(reason="duplicate_trip_id"),
        ]
    ).rename(columns={"line": "raw"})[["source_file", "reason", "raw"]]
    trips.to_parquet(output, index=False)
    quarantine.to_parquet(str(output).removesuffix(".parquet") + ".quarantine.parquet", index=False)
    counts = quarantine["reason"].str.split(":").str[0].value_counts()
    return rules.summary(len(trips), {str(k): int(v) for k, v in counts.items()})
