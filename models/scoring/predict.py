"""Batch scoring: P(member) and the predicted rider type for every trip of a processed Parquet file.

``python -m models predict`` with no arguments scores the latest processed period on S3
(``processed/<period>/trips.parquet``; the period ending last, a year before its months) with the
registry's ``champion`` into ``data/predictions/<period>.parquet``. ``--input``/``--output`` take any
path or ``s3://`` URI and ``--model`` any ``models:/`` or ``runs:/`` URI. The output keeps each trip's
id, start time and (when present) its true label next to the prediction, one row per input row.
Progress is one line per step (MLflow's download bars are switched off).
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models.core.errors import UserError
from models.core.names import CHAMPION
from models.core.periods import is_month, month_key
from models.core.secrets import mask_secrets
from models.core.settings import Settings, load_settings
from models.data.features import FEATURE_COLUMNS, LABEL_COLUMN, POSITIVE_LABEL, TIME_COLUMN
from models.registry.mlflow_client import connect_tracking, load_sklearn_model
from models.training.dataset import localise_input, read_parquet_columns, select_features, write_output
from models.training.inputs import OUTPUT_NAME, list_processed_periods
from models.training.metrics import THRESHOLD, member_probability

log = logging.getLogger(__name__)

KEPT_COLUMNS = ["trip_id", TIME_COLUMN, LABEL_COLUMN]
_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
PREDICTIONS_DIR = Path("data/predictions")
PROGRESS_BAR_VARIABLE = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # mlflow.environment_variables


def period_end_key(period: str) -> tuple[int, int]:
    """Sort key: the period's last month, then a year before its months (it holds more data)."""
    last = period if is_month(period) else f"{period}-12"
    return month_key(last), 0 if is_month(period) else 1


def find_latest_period(settings: Settings) -> str:
    """The processed period on S3 that ends last; one sentence when there is none."""
    periods = list_processed_periods(settings)
    if not periods:
        where = settings.s3_uri(settings.processed_prefix) + "/"
        raise UserError(
            f"No processed period under {where}; run the pipeline first (make run or make demo), "
            "or give PREDICT_INPUT."
        )
    return max(periods, key=period_end_key)


def default_paths(input_uri: str | None, output_uri: str | None, settings: Settings) -> tuple[str, str]:
    """``--input`` (default: the latest processed period on S3) and ``--output``
    (default: ``data/predictions/<period>.parquet``, or ``<input name>.parquet`` for a given input)."""
    if input_uri is None:
        period = find_latest_period(settings)
        input_uri = settings.s3_uri(settings.processed_prefix, period, OUTPUT_NAME)
        output_uri = output_uri or str(PREDICTIONS_DIR / f"{period}.parquet")
    if output_uri is None:
        output_uri = str(PREDICTIONS_DIR / "predictions.parquet")
    return input_uri, output_uri


def resolve_model_uri(client: MlflowClient, model_uri: str) -> tuple[str, str | None]:
    """Pin an alias URI to the version it points to now: ``(models:/name/version, version)``."""
    match = _ALIAS_URI.match(model_uri)
    if not match:
        return model_uri, None
    try:
        version = client.get_model_version_by_alias(match["name"], match["alias"]).version
    except MlflowException as exc:
        raise UserError(
            f"There is no model {model_uri} in the registry at {mask_secrets(client.tracking_uri)}; "
            "train and register one first (make train register)."
        ) from exc
    return f"models:/{match['name']}/{version}", str(version)


def load_model(client: MlflowClient, model_uri: str) -> tuple[Any, str, str | None]:
    """The pipeline behind ``model_uri``, the pinned URI it was loaded from, and its version."""
    pinned, version = resolve_model_uri(client, model_uri)
    try:
        return load_sklearn_model(pinned), pinned, version
    except (MlflowException, OSError) as exc:
        where, why = mask_secrets(client.tracking_uri), mask_secrets(str(exc))
        raise UserError(f"Model {model_uri} cannot be loaded from {where} ({why}).") from exc


def score_trips(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """The kept identifying columns plus ``p_member`` and ``predicted_user_type`` for every row."""
    p_member = member_probability(model, select_features(frame))
    kept = frame[[c for c in KEPT_COLUMNS if c in frame.columns]].reset_index(drop=True)
    return kept.assign(
        p_member=p_member, predicted_user_type=np.where(p_member >= THRESHOLD, POSITIVE_LABEL, "casual")
    )


def predict(
    input_uri: str,
    output_uri: str,
    model_uri: str | None = None,
    *,
    tracking_uri: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Score every trip of ``input_uri`` with ``model_uri`` (default: the champion) into ``output_uri``."""
    settings = settings or load_settings()
    model_uri = model_uri or f"models:/{settings.model_name}@{CHAMPION}"
    client = connect_tracking(tracking_uri, settings)
    with tempfile.TemporaryDirectory(prefix="to-bikes-predict-") as workdir:
        local = localise_input(input_uri, Path(workdir), settings)
        frame = read_parquet_columns(local, FEATURE_COLUMNS + KEPT_COLUMNS, FEATURE_COLUMNS)
        model, pinned, version = load_model(client, model_uri)
        scored = score_trips(model, frame)
        write_output(scored, output_uri, Path(workdir), settings)
    log.info("scored %s trips with %s into %s", len(scored), pinned, output_uri)
    return {
        "rows": len(scored),
        "output": output_uri,
        "model_uri": pinned,
        "model_version": version,
        "member_share": round(float((scored["predicted_user_type"] == POSITIVE_LABEL).mean()), 4),
    }
