"""The reference sample: a seeded sample of a model's validation month, kept with the model in MLflow.

Training logs it (``log_reference``) as ``reference/reference.parquet`` of the run that produced the model
version, with the fitted model's own scores on those rows, and tags the run with the month
(``reference.month``). Those trips were held out from training, so the model's scores on them are
what it does on data it never saw (its training rows would score better than any new month). Monitoring
downloads it (``load_reference``) to compare a scored month with it, so it never re-reads old raw or
processed data.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from models.core.errors import UserError
from models.core.names import CASUAL, POSITIVE_LABEL
from models.data.features import FEATURE_COLUMNS, LABEL_COLUMN
from models.training.dataset import select_features
from models.training.metrics import THRESHOLD, member_probability

log = logging.getLogger(__name__)

REFERENCE_FOLDER = "reference"
REFERENCE_FILE = "reference.parquet"
REFERENCE_ROWS = 5_000
REFERENCE_MONTH_TAG = "reference.month"  # the held-out month the sample was drawn from
PROBABILITY_COLUMN = "p_member"
PREDICTED_COLUMN = "predicted_user_type"


def label_predictions(p_member: np.ndarray) -> np.ndarray:
    """The predicted rider type for each P(member), at the threshold training and scoring use."""
    return np.where(np.asarray(p_member) >= THRESHOLD, POSITIVE_LABEL, CASUAL)


def sample_reference(frame: pd.DataFrame, model: Any, seed: int, rows: int = REFERENCE_ROWS) -> pd.DataFrame:
    """Up to ``rows`` rows of ``frame`` (seeded): features, true label, the model's P(member) and label."""
    picked = frame.sample(n=min(rows, len(frame)), random_state=seed) if len(frame) > rows else frame
    features = select_features(picked).reset_index(drop=True)
    p_member = member_probability(model, features)
    return features.assign(
        **{
            LABEL_COLUMN: picked[LABEL_COLUMN].astype(str).to_numpy(),
            PROBABILITY_COLUMN: p_member,
            PREDICTED_COLUMN: label_predictions(p_member),
        }
    )


def log_reference(frame: pd.DataFrame, model: Any, seed: int, month: str) -> None:
    """Log a sample of ``frame`` (the held-out ``month``) as an artifact of the active MLflow run."""
    sample = sample_reference(frame, model, seed)
    with tempfile.TemporaryDirectory(prefix="to-bikes-reference-") as workdir:
        path = Path(workdir) / REFERENCE_FILE
        sample.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=REFERENCE_FOLDER)
    mlflow.set_tag(REFERENCE_MONTH_TAG, month)
    log.info("logged a reference sample of %s held-out rows of %s (seed %s)", len(sample), month, seed)


def load_reference(run_id: str, workdir: Path) -> pd.DataFrame:
    """The reference sample the training run ``run_id`` logged; a run without one is a UserError."""
    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"{REFERENCE_FOLDER}/{REFERENCE_FILE}", dst_path=str(workdir)
        )
    except (MlflowException, OSError) as exc:
        raise UserError(
            f"Training run {run_id} has no {REFERENCE_FOLDER}/{REFERENCE_FILE} artifact; the champion was "
            "trained before reference samples were kept: retrain it (make run)."
        ) from exc
    frame = pd.read_parquet(path)
    missing = [c for c in [*FEATURE_COLUMNS, LABEL_COLUMN, PROBABILITY_COLUMN] if c not in frame.columns]
    if missing:
        raise UserError(f"The reference sample of run {run_id} lacks column(s) {missing}; retrain the model.")
    return frame
