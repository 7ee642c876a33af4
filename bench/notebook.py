"""The reference models.data.preprocess is measured against: the same cleaning, as a notebook would do it.

pandas reads each CSV as strings, then times are parsed row by row with ``apply`` and
``datetime.strptime`` (the format picked per file from its first values), labels and holidays are
mapped row by row too, and the other checks are ordinary pandas column operations. It keeps the
semantics of ``models.data.preprocess``: the same eras, quarantine reasons (first failing check wins),
repaired rows with trailing empty fields, duplicate ids across files, the same features. Only the
timing is of interest here; the row counts are compared with ``models.data.preprocess`` as a check.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from models.data.eras import ERAS
from models.data.holidays import holidays_for

FORMATS = [
    "%m/%d/%y %H:%M:%S",
    "%m/%d/%y %H:%M",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d/%m/%y %H:%M:%S",
    "%d/%m/%y %H:%M",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
]
LABELS = {"member": "member", "annual member": "member", "casual": "casual", "casual member": "casual"}
NULLS = {"", "NULL", "NULLNULL"}
EXTRA = 6  # spare columns that catch rows with too many fields
MIN_DURATION_S = 60
MAX_DURATION_S = 24 * 3600


def read_members(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every CSV in a file: the CSV itself, or the CSVs of a ZIP (nested ZIPs too)."""
    if path.suffix.lower() != ".zip":
        return [(path.name, path.read_bytes())]
    return unzip_bytes(path.read_bytes(), path.name)


def unzip_bytes(data: bytes, name: str) -> list[tuple[str, bytes]]:
    """The CSVs inside a ZIP held in memory, skipping ``__MACOSX`` junk and folders."""
    found = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            parts = PurePosixPath(info.filename).parts
            if info.filename.endswith("/") or "__MACOSX" in parts:
                continue
            inner = archive.read(info)
            if info.filename.lower().endswith(".zip"):
                found.extend(unzip_bytes(inner, f"{name}!{info.filename}"))
            elif info.filename.lower().endswith(".csv"):
                found.append((f"{name}!{info.filename}", inner))
    return found


def read_csv(data: bytes) -> tuple[pd.DataFrame, list[str]]:
    """All values as strings, with spare columns for long rows and each row's field count;
    UTF-8 (BOM or not), else cp1252."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    header = text.split("\n", 1)[0].strip().split(",")
    names = header + [f"extra_{i}" for i in range(EXTRA)]
    frame = pd.read_csv(
        io.StringIO(text), header=None, skiprows=1, names=names, dtype=str, keep_default_na=False
    )
    lines = pd.Series(text.splitlines()[1:], dtype=object)
    frame["fields"] = (lines[lines.str.strip() != ""].str.count(",") + 1).to_numpy()
    return frame, header


def parse_time(value, fmt: str):
    """One time string to a datetime (None when it does not parse): what ``apply`` calls per row."""
    try:
        return datetime.strptime(value.strip(), fmt)
    except (ValueError, AttributeError):
        return None


def pick_format(values: pd.Series) -> str:
    """The first format that parses at least 95% of the first 5,000 start times."""
    sample = values[~values.str.strip().isin(NULLS)].head(5000)
    for fmt in FORMATS:
        parsed = sample.apply(parse_time, fmt=fmt)
        if parsed.notna().mean() >= 0.95:
            return fmt
    return FORMATS[0]


def to_int(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Integers, plus the missing and present-but-bad masks."""
    text = values.str.strip()
    missing = text.isin(NULLS) | values.isna()
    good = text.str.fullmatch(r"-?\d{1,18}").fillna(False).astype(bool)
    return pd.to_numeric(text.where(good), errors="coerce"), missing, ~missing & ~good


def clean_name(values: pd.Series) -> pd.Series:
    """Trimmed station names with single spaces; NULL as missing."""
    text = values.str.strip().str.replace(r" {2,}", " ", regex=True)
    return text.where(~text.isin(NULLS))


def first_reason(frame: pd.DataFrame, checks: list[tuple[str, pd.Series]]) -> pd.Series:
    """The first failing check per row (None when the row is kept)."""
    reason = pd.Series(None, index=frame.index, dtype=object)
    for name, mask in checks:
        reason = reason.where(reason.notna() | ~mask.fillna(False).astype(bool), name)
    return reason


def canonical(frame: pd.DataFrame, header: list[str]) -> tuple[pd.DataFrame, pd.Series, bool]:
    """Columns renamed to the canonical names, the rows whose field count is wrong, and whether the
    era has station ids."""
    era = next(e for e in ERAS if list(e.header) == header)
    extra = frame[[c for c in frame.columns if c.startswith("extra_")]]
    too_many = extra.apply(lambda col: col.fillna("").str.strip() != "").any(axis=1)
    too_few = frame["fields"] < len(header)
    trips = frame[list(era.columns)].rename(columns=era.columns)
    for column in ("start_station_id", "end_station_id", "bike_id", "bike_model"):
        if column not in trips:
            trips[column] = None
    return trips, too_many | too_few, era.has_station_ids


def clean_file(frame: pd.DataFrame, header: list[str], source: str) -> tuple[pd.DataFrame, pd.Series]:
    """Canonical trips with features, and each row's quarantine reason (duplicates come later)."""
    trips, wrong_fields, has_ids = canonical(frame, header)
    fmt = pick_format(trips["start_time"])
    out = pd.DataFrame(index=trips.index)
    out["trip_id"], trip_missing, trip_bad = to_int(trips["trip_id"])
    start_missing = trips["start_time"].str.strip().isin(NULLS)
    end_missing = trips["end_time"].fillna("").str.strip().isin(NULLS)
    out["start_time"] = pd.to_datetime(trips["start_time"].apply(parse_time, fmt=fmt))
    out["end_time"] = pd.to_datetime(trips["end_time"].apply(parse_time, fmt=fmt))
    out["duration_s"], dur_missing, dur_bad = to_int(trips["duration_s"])
    checks = [
        ("field_count", wrong_fields),
        ("missing_trip_id", trip_missing),
        ("bad_trip_id", trip_bad),
        ("missing_start_time", start_missing),
        ("bad_start_time", ~start_missing & out["start_time"].isna()),
        ("missing_end_time", end_missing),
        ("bad_end_time", ~end_missing & out["end_time"].isna()),
        ("missing_duration", dur_missing),
        ("bad_duration", dur_bad),
    ]
    for side in ("start", "end"):
        out[f"{side}_station_name"] = clean_name(trips[f"{side}_station_name"].fillna(""))
        if has_ids:
            out[f"{side}_station_id"], id_missing, id_bad = to_int(trips[f"{side}_station_id"].fillna(""))
            checks += [("missing_station_id", id_missing), ("bad_station_id", id_bad)]
        else:
            out[f"{side}_station_id"] = np.nan
            checks.append(("missing_station", out[f"{side}_station_name"].isna()))
    checks += label_checks(trips["user_type"], out)
    checks += [
        ("nonpositive_duration", out["duration_s"] <= 0),
        ("too_long", out["duration_s"] > MAX_DURATION_S),
        ("end_before_start", out["end_time"] < out["start_time"]),
        ("too_short", out["duration_s"] < MIN_DURATION_S),
    ]
    out["bike_id"] = pd.to_numeric(trips["bike_id"].fillna("").str.strip(), errors="coerce")
    out["bike_model"] = trips["bike_model"].fillna("").str.strip().replace(list(NULLS), None)
    out["source_file"] = source
    return add_features(out), first_reason(out, checks)


def label_checks(values: pd.Series, out: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """Labels mapped row by row to member/casual; missing and unknown ones flagged."""
    text = values.fillna("").str.strip()
    out["user_type"] = text.apply(lambda v: LABELS.get(v.lower()))
    missing = text.isin(NULLS)
    unknown = ~missing & out["user_type"].isna()
    return [("missing_user_type", missing), ("unknown_user_type", unknown)]


def add_features(trips: pd.DataFrame) -> pd.DataFrame:
    """Hour, weekday, month, weekend and holiday flags (row by row), round trip."""
    start = trips["start_time"]
    holidays = set(holidays_for(start.dt.year.dropna().astype(int).unique().tolist()))
    trips["hour"] = start.dt.hour
    trips["weekday"] = start.dt.dayofweek
    trips["month"] = start.dt.month
    trips["is_weekend"] = (trips["weekday"] >= 5).astype("int8")
    trips["is_holiday"] = start.apply(lambda t: int(pd.notna(t) and t.date() in holidays))
    by_id = trips["start_station_id"] == trips["end_station_id"]
    by_name = trips["start_station_name"] == trips["end_station_name"]
    trips["round_trip"] = np.where(trips["start_station_id"].notna(), by_id, by_name).astype("int8")
    return trips


def quarantine_rows(frame: pd.DataFrame, header: list[str], reason: pd.Series, source: str) -> pd.DataFrame:
    """The rows with a reason, with their original text (fields joined by commas)."""
    dropped = reason.notna()
    raw = [",".join(fields) for fields in frame.loc[dropped, header].fillna("").itertuples(index=False)]
    return pd.DataFrame({"source_file": source, "reason": reason[dropped], "raw": raw})


def clean_input(input_dir: str | Path, output: str | Path) -> dict[str, int]:
    """Clean every file under ``input_dir``; write kept trips and quarantined rows; return the counts."""
    kept, quarantined = [], []
    for path in sorted(p for p in Path(input_dir).rglob("*") if p.suffix.lower() in (".csv", ".zip")):
        for source, data in read_members(path):
            frame, header = read_csv(data)
            trips, reason = clean_file(frame, header, source)
            kept.append(trips[reason.isna()])
            quarantined.append(quarantine_rows(frame, header, reason, source))
    trips = pd.concat(kept, ignore_index=True)
    duplicate = trips["trip_id"].duplicated()
    repeats = pd.DataFrame({"source_file": trips["source_file"], "reason": "duplicate_trip_id", "raw": ""})
    quarantine = pd.concat([*quarantined, repeats[duplicate]], ignore_index=True)
    trips = trips[~duplicate]
    trips.to_parquet(output, index=False)
    quarantine.to_parquet(str(output).removesuffix(".parquet") + ".quarantine.parquet", index=False)
    by_reason = quarantine["reason"].value_counts().sort_index()
    return {
        "rows_in": len(trips) + len(quarantine),
        "rows_out": len(trips),
        "quarantined": len(quarantine),
        "by_reason": {str(k): int(v) for k, v in by_reason.items()},
    }
