"""Reading processed trips for the model: the feature matrix, the label and the time-based split.

Training validates on the latest month present and trains on every earlier month, so the reported
metrics say how the model does on a month it has never seen, the way it will be used.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.core import storage
from models.core.errors import UserError
from models.core.names import CASUAL, MEMBER
from models.core.periods import format_month
from models.core.settings import Settings
from models.data.features import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    NUMERIC_FEATURES,
    POSITIVE_LABEL,
    TIME_COLUMN,
)

log = logging.getLogger(__name__)

LABELS = (MEMBER, CASUAL)
MIN_VALID_ROWS = 50


@dataclass(frozen=True)
class Split:
    """Rows before the latest month (train) and the latest month itself (valid)."""

    train: pd.DataFrame
    valid: pd.DataFrame
    valid_month: str


@dataclass(frozen=True)
class TrainingInput:
    """One processed file a run read: where from, its digest, its rows (in read order) and months."""

    uri: str
    digest: str
    rows: int
    months: tuple[str, ...]


@dataclass
class TrainingData:
    """The labelled trips of every input, concatenated in the order the inputs were given."""

    frame: pd.DataFrame
    inputs: list[TrainingInput]

    @property
    def source(self) -> str:
        """The input URIs, for messages."""
        return ", ".join(item.uri for item in self.inputs)

    @property
    def digest(self) -> str:
        """The file's digest for one input; for several, SHA-256 over their digests in input order."""
        if len(self.inputs) == 1:
            return self.inputs[0].digest
        joined = "\n".join(item.digest for item in self.inputs)
        return f"sha256:{hashlib.sha256(joined.encode()).hexdigest()}"


def localise_input(uri: str, workdir: Path, settings: Settings | None = None) -> Path:
    """A local path for the input: the path itself, or a download of an ``s3://`` object into ``workdir``."""
    return storage.open_local(uri, workdir, settings)


def write_output(frame: pd.DataFrame, uri: str, workdir: Path, settings: Settings | None = None) -> None:
    """Write a frame as Parquet, atomically: readers see the old file or the whole new one, never half."""
    if not storage.is_s3(uri) and Path(uri.removeprefix("file://")).is_dir():
        raise UserError(f"Output {uri} is a directory; give a file name ending in .parquet.")
    staged = workdir / "output.parquet"
    frame.to_parquet(staged, index=False)
    storage.move_file_atomic(staged, uri, settings)


def read_parquet_columns(path: str | Path, columns: list[str], required: list[str]) -> pd.DataFrame:
    """Read the named columns of a local Parquet file; a missing file or column is a UserError."""
    # The Arrow buffers are released column by column as pandas takes them over (lower peak memory).
    return read_parquet_table(path, columns, required).to_pandas(self_destruct=True, split_blocks=True)


def read_parquet_table(path: str | Path, columns: list[str], required: list[str]) -> pa.Table:
    """The named columns of a local Parquet file as Arrow; a missing file or column is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Input file {path} does not exist; run models.data.preprocess first or fix --input.")
    try:
        schema_names = set(pq.read_schema(path).names)
    except (OSError, ValueError) as exc:
        raise UserError(f"Input file {path} is not a readable Parquet file ({exc}).") from exc
    missing = [c for c in required if c not in schema_names]
    if missing:
        raise UserError(f"Input file {path} lacks the column(s) {', '.join(missing)}; was it preprocessed?")
    present = [c for c in columns if c in schema_names]
    return pq.read_table(path, columns=present)


def read_labelled_trips(path: str | Path) -> pd.DataFrame:
    """Features, label and start time of every processed trip; every row must carry a known label."""
    wanted = [*FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN]
    frame = check_labelled(read_parquet_columns(path, wanted, wanted), path)
    log.info("read %s labelled trips from %s", len(frame), path)
    return frame


def check_labelled(frame: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """The frame itself when every row has a member/casual label and a start time, else a UserError."""
    bad = ~frame[LABEL_COLUMN].isin(LABELS)
    if bad.any():
        example = frame.loc[bad, LABEL_COLUMN].iloc[0]
        raise UserError(
            f"Input file {path} has {int(bad.sum())} row(s) whose {LABEL_COLUMN} is not member/casual "
            f"(e.g. {example!r}); preprocessing should have quarantined them."
        )
    if frame[TIME_COLUMN].isna().any():
        raise UserError(f"Input file {path} has rows without a {TIME_COLUMN}; preprocess it again.")
    return frame


def read_training_inputs(uris: Sequence[str], settings: Settings | None = None) -> TrainingData:
    """The labelled trips of every input as one frame, with each input's digest, rows and months.

    Only the model's columns are read, as Arrow, and turned into pandas once after concatenation, so
    the peak is about one copy of the data. Two inputs that hold trips of the same month are refused
    (processed/2025/ next to processed/2025-03/ would count March twice); distinct periods never share
    a trip, since preprocessing keeps only the trips that start in its period.
    """
    wanted = [*FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN]
    tables, digests = [], []
    for uri in uris:
        with tempfile.TemporaryDirectory(prefix="to-bikes-train-") as workdir:
            local = localise_input(uri, Path(workdir), settings)
            tables.append(read_parquet_table(local, wanted, wanted))
            digests.append(storage.file_digest(local))
    rows = [table.num_rows for table in tables]
    frame = concat_to_pandas(tables, uris)
    inputs = describe_inputs(frame, uris, digests, rows)
    log.info("read %s labelled trips from %s input(s)", len(frame), len(inputs))
    return TrainingData(frame, inputs)


def concat_to_pandas(tables: list[pa.Table], uris: Sequence[str]) -> pd.DataFrame:
    """One pandas frame (fresh 0..n-1 index) from the inputs' tables, which are emptied on the way."""
    try:
        table = pa.concat_tables(tables, promote_options="permissive").replace_schema_metadata(None)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise UserError(f"Inputs {', '.join(uris)} have different column types ({exc}).") from exc
    tables.clear()  # the concatenated table is the only owner left, so to_pandas can free as it goes
    return table.to_pandas(self_destruct=True, split_blocks=True)


def describe_inputs(
    frame: pd.DataFrame, uris: Sequence[str], digests: Sequence[str], rows: Sequence[int]
) -> list[TrainingInput]:
    """Check each input's rows (in read order) and name its months; a month in two inputs is refused."""
    inputs: list[TrainingInput] = []
    owners: dict[int, str] = {}
    start = 0
    for uri, digest, count in zip(uris, digests, rows, strict=True):
        part = check_labelled(frame.iloc[start : start + count], uri)
        start += count
        keys = np.unique(month_keys(part[TIME_COLUMN])).tolist()
        for key in keys:
            if key in owners:
                raise UserError(
                    f"Inputs {owners[key]} and {uri} both hold trips of {format_month(key)}; give each "
                    "month once (processed/<year>/ or processed/<year>-<month>/, not both)."
                )
            owners[key] = uri
        inputs.append(TrainingInput(uri, digest, count, tuple(format_month(k) for k in keys)))
    return inputs


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
    """Year*12 + month-1 per start time (NumPy months since 1970: 4x faster than ``dt.month``)."""
    months = pd.to_datetime(times).dt.tz_localize(None).to_numpy().astype("datetime64[M]")
    return months.astype("int64") + 1970 * 12


def split_by_month(frame: pd.DataFrame, source: str) -> Split:
    """Train on every month before the latest one, validate on the latest month present."""
    keys = month_keys(frame[TIME_COLUMN])
    latest = int(keys.max())
    valid_mask = keys == latest
    month = format_month(latest)
    if valid_mask.all():
        raise UserError(
            f"Input {source} holds only one month ({month}); a time-based split needs at least two months."
        )
    first = int(np.argmax(valid_mask))  # months in order (as processed) make the split two slices, no copy
    tail = bool(valid_mask[first:].all())
    valid, train = (
        (frame.iloc[first:], frame.iloc[:first]) if tail else (frame[valid_mask], frame[~valid_mask])
    )
    labels = set(valid[LABEL_COLUMN].unique())
    if len(valid) < MIN_VALID_ROWS or labels != set(LABELS):
        raise UserError(
            f"The latest month {month} of {source} has {len(valid)} trip(s) with labels {sorted(labels)}; "
            f"validation needs at least {MIN_VALID_ROWS} trips of both kinds (use preprocess --period)."
        )
    if train[LABEL_COLUMN].nunique() < len(LABELS):
        raise UserError(f"The training months of {source} (before {month}) hold only one kind of rider.")
    log.info(
        "time split: %s training trips before %s, %s validation trips in it", len(train), month, len(valid)
    )
    return Split(train=train, valid=valid, valid_month=month)
