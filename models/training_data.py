"""Reading processed trips for the model: the feature matrix, the label and the time-based split.

Training validates on the latest month present and trains on every earlier month, so the reported
metrics say how the model does on a month it has never seen, the way it will be used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from models import storage
from models.errors import UserError
from models.features import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    NUMERIC_FEATURES,
    POSITIVE_LABEL,
    TIME_COLUMN,
)
from models.settings import Settings

log = logging.getLogger(__name__)

LABELS = (POSITIVE_LABEL, "casual")
MIN_VALID_ROWS = 50


@dataclass(frozen=True)
class Split:
    """Rows before the latest month (train) and the latest month itself (valid)."""

    train: pd.DataFrame
    valid: pd.DataFrame
    valid_month: str


def localise_input(uri: str, workdir: Path, settings: Settings | None = None) -> Path:
    """A local path for the input: the path itself, or a download of an ``s3://`` object into ``workdir``."""
    return storage.open_local(uri, workdir, settings)


def write_output(frame: pd.DataFrame, uri: str, workdir: Path, settings: Settings | None = None) -> None:
    """Write a frame as Parquet, atomically: readers see the old file or the whole new one, never half."""
    if not storage.is_s3(uri) and Path(uri.removeprefix("file://")).is_dir():
        raise UserError(f"Output {uri} is a directory; give a file name ending in .parquet.")
    staged = workdir / "output.parquet"
    frame.to_parquet(staged, index=False)
    storage.write_file_atomic(staged, uri, settings)


def read_parquet_columns(path: str | Path, columns: list[str], required: list[str]) -> pd.DataFrame:
    """Read the named columns of a local Parquet file; a missing file or column is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Input file {path} does not exist; run models.preprocess first or fix --input.")
    try:
        schema_names = set(pq.read_schema(path).names)
    except (OSError, ValueError) as exc:
        raise UserError(f"Input file {path} is not a readable Parquet file ({exc}).") from exc
    missing = [c for c in required if c not in schema_names]
    if missing:
        raise UserError(f"Input file {path} lacks the column(s) {', '.join(missing)}; was it preprocessed?")
    present = [c for c in columns if c in schema_names]
    # The Arrow buffers are released column by column as pandas takes them over (lower peak memory).
    return pq.read_table(path, columns=present).to_pandas(self_destruct=True, split_blocks=True)


def read_labelled_trips(path: str | Path) -> pd.DataFrame:
    """Features, label and start time of every processed trip; every row must carry a known label."""
    wanted = [*FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN]
    frame = read_parquet_columns(path, wanted, wanted)
    bad = ~frame[LABEL_COLUMN].isin(LABELS)
    if bad.any():
        example = frame.loc[bad, LABEL_COLUMN].iloc[0]
        raise UserError(
            f"Input file {path} has {int(bad.sum())} row(s) whose {LABEL_COLUMN} is not member/casual "
            f"(e.g. {example!r}); preprocessing should have quarantined them."
        )
    if frame[TIME_COLUMN].isna().any():
        raise UserError(f"Input file {path} has rows without a {TIME_COLUMN}; preprocess it again.")
    log.info("read %s labelled trips from %s", len(frame), path)
    return frame


def to_numeric_column(values: pd.Series, name: str) -> np.ndarray:
    """A feature column as float64 (missing -> NaN); a value that is not a number is a UserError."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64").to_numpy(na_value=np.nan)
    converted = pd.to_numeric(values, errors="coerce")
    broken = converted.isna() & values.notna()
    if broken.any():
        raise UserError(f"Column {name} holds non-numeric value(s) such as {values[broken].iloc[0]!r}.")
    return converted.astype("float64").to_numpy(na_value=np.nan)


def select_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input matrix: ``FEATURE_COLUMNS`` in contract order, all float64 (stations as codes)."""
    missing = [c for c in FEATURE_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"The features lack the column(s) {', '.join(missing)}; was the input preprocessed?")
    data = {c: to_numeric_column(frame[c], c) for c in NUMERIC_FEATURES + CATEGORICAL_FEATURES}
    return pd.DataFrame(data, index=frame.index)[FEATURE_COLUMNS]


def encode_label(labels: pd.Series) -> np.ndarray:
    """1 for member, 0 for casual (the model's positive class is member)."""
    return (labels == POSITIVE_LABEL).to_numpy(dtype="int8")


def month_keys(times: pd.Series) -> np.ndarray:
    """Year*12 + month-1 for each start time: cheap, sortable month identifiers."""
    stamps = pd.to_datetime(times)
    return (stamps.dt.year * 12 + stamps.dt.month - 1).to_numpy()


def split_by_month(frame: pd.DataFrame, source: str) -> Split:
    """Train on every month before the latest one, validate on the latest month present."""
    keys = month_keys(frame[TIME_COLUMN])
    latest = int(keys.max())
    valid_mask = keys == latest
    month = f"{latest // 12:04d}-{latest % 12 + 1:02d}"
    if valid_mask.all():
        raise UserError(
            f"Input {source} holds only one month ({month}); a time-based split needs at least two months."
        )
    valid = frame.loc[valid_mask]
    labels = set(valid[LABEL_COLUMN].unique())
    if len(valid) < MIN_VALID_ROWS or labels != set(LABELS):
        raise UserError(
            f"The latest month {month} of {source} has {len(valid)} trip(s) with labels {sorted(labels)}; "
            f"validation needs at least {MIN_VALID_ROWS} trips of both kinds (use preprocess --period)."
        )
    train = frame.loc[~valid_mask]
    if train[LABEL_COLUMN].nunique() < len(LABELS):
        raise UserError(f"The training months of {source} (before {month}) hold only one kind of rider.")
    log.info(
        "time split: %s training trips before %s, %s validation trips in it", len(train), month, len(valid)
    )
    return Split(train=train, valid=valid, valid_month=month)
