"""Scoring a processed period with the champion: ``predictions/<period>/predictions.parquet`` on S3.

    python -m models score --period 2025-12

Loads ``models:/<model>@champion`` pinned to the version the alias names now, scores every trip of
``processed/<period>/trips.parquet`` (``models.scoring.predict.score_trips``) and writes one row per trip:
trip id, P(member), predicted and true label, the model version and its training run id. The file is
published whole or not at all (``models.core.storage.move_file_atomic``), so a rerun simply replaces it.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models.core.errors import UserError
from models.core.names import CHAMPION
from models.core.periods import check_period
from models.core.settings import Settings, load_settings
from models.data.features import FEATURE_COLUMNS
from models.registry.mlflow_client import connect_tracking
from models.scoring.predict import KEPT_COLUMNS, load_model, score_trips
from models.training.dataset import localise_input, read_parquet_columns, write_output

log = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.parquet"
PREDICTION_COLUMNS = [
    "trip_id",
    "p_member",
    "predicted_user_type",
    "user_type",
    "model_version",
    "run_id",
]


@dataclass(frozen=True)
class ScoreResult:
    """What one scoring run wrote: where, how many rows, with which model."""

    period: str
    input: str
    output: str
    rows: int
    model_uri: str
    model_version: str
    run_id: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreResult:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def processed_uri(settings: Settings, period: str) -> str:
    """Where preprocessing wrote the period's trips."""
    return settings.s3_uri(settings.processed_prefix, period, "trips.parquet")


def predictions_uri(settings: Settings, period: str) -> str:
    """Where the period's predictions go."""
    return settings.s3_uri(settings.predictions_prefix, period, PREDICTIONS_FILE)


def champion_version(client: MlflowClient, settings: Settings) -> str:
    """The version the champion alias names now."""
    try:
        return str(client.get_model_version_by_alias(settings.model_name, CHAMPION).version)
    except MlflowException as exc:
        raise UserError(
            f"There is no model models:/{settings.model_name}@{CHAMPION} in the registry; "
            "train and register one first (make run)."
        ) from exc


def score_period(
    period: str,
    settings: Settings | None = None,
    *,
    model_version: str | None = None,
    input_uri: str | None = None,
) -> ScoreResult:
    """Score the processed trips of ``period`` with a version (default: the champion's, now)."""
    settings = settings or load_settings()
    period = check_period(period)
    source = input_uri or processed_uri(settings, period)
    output = predictions_uri(settings, period)
    client = connect_tracking(settings.mlflow_tracking_uri, settings)
    version = model_version or champion_version(client, settings)
    model, pinned, _ = load_model(client, f"models:/{settings.model_name}/{version}")
    run_id = str(client.get_model_version(settings.model_name, version).run_id)
    with tempfile.TemporaryDirectory(prefix="to-bikes-score-") as workdir:
        local = localise_input(source, Path(workdir), settings)
        frame = read_parquet_columns(local, FEATURE_COLUMNS + KEPT_COLUMNS, FEATURE_COLUMNS)
        scored = score_trips(model, frame).assign(model_version=version, run_id=run_id)
        write_output(scored[PREDICTION_COLUMNS], output, Path(workdir), settings)
    log.info("scored %s trips of %s with %s into %s", len(scored), period, pinned, output)
    return ScoreResult(period, source, output, len(scored), pinned, version, run_id)
