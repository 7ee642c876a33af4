"""Monitoring a scored month: its real performance, drift against the reference, and a verdict.

    python -m models monitor --period 2025-12

Every trip carries its true label, so a month's actual ROC AUC, PR AUC (casual), F1 per class and
member shares are known once it is scored. The month is compared with the model's own validation ROC
AUC (``TO_BIKES_MONITOR_MAX_AUC_DROP``) and with the reference sample kept with the model version
(``models.scoring.reference``), feature by feature (Evidently, ``TO_BIKES_MONITOR_MAX_DRIFT_SHARE``).
The Evidently HTML report and a JSON summary go to ``reports/<period>/`` on S3 and into an MLflow
monitoring run tagged with the model version; the version gets a ``monitoring.<period>`` tag.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient

from models.core import storage
from models.core.errors import UserError
from models.core.names import MONITORING_EXPERIMENT, POSITIVE_LABEL
from models.core.periods import check_period
from models.core.settings import Settings, load_settings
from models.data.features import FEATURE_COLUMNS, LABEL_COLUMN
from models.registry.mlflow_client import build_run_url, connect_tracking
from models.scoring.drift import build_report
from models.scoring.reference import PREDICTED_COLUMN, PROBABILITY_COLUMN, load_reference
from models.scoring.score import PREDICTION_COLUMNS, predictions_uri, processed_uri
from models.training.dataset import localise_input, read_parquet_columns
from models.training.metrics import compute_metrics
from models.training.mlflow_run import ensure_experiment

log = logging.getLogger(__name__)

REPORT_FILE = "monitoring.html"
SUMMARY_FILE = "monitoring.json"
OK, BREACH = "ok", "breach"


def report_uri(settings: Settings, period: str, name: str = REPORT_FILE) -> str:
    """Where a period's monitoring report (or summary) goes."""
    return settings.s3_uri(settings.reports_prefix, period, name)


def report_link(settings: Settings, uri: str) -> str:
    """A link a browser opens for a report on S3 (presigned, a week long; ``models.core.s3.browser_link``)."""
    from models.core.s3 import browser_link

    return browser_link(uri, settings, "text/html" if uri.endswith(".html") else None)


def read_scored_month(settings: Settings, period: str, workdir: Path) -> pd.DataFrame:
    """The period's predictions next to its features (the same trips, in the same order)."""
    predictions = localise_input(predictions_uri(settings, period), workdir, settings)
    scored = read_parquet_columns(predictions, PREDICTION_COLUMNS, PREDICTION_COLUMNS)
    trips = localise_input(processed_uri(settings, period), workdir, settings)
    features = read_parquet_columns(trips, ["trip_id", *FEATURE_COLUMNS], FEATURE_COLUMNS)
    if len(features) != len(scored) or not features["trip_id"].equals(scored["trip_id"]):
        raise UserError(
            f"The predictions of {period} do not match its processed trips; score the period again."
        )
    return pd.concat([features[FEATURE_COLUMNS], scored], axis=1)


def measure_month(month: pd.DataFrame) -> dict[str, float]:
    """Actual performance (``models.training.metrics``) and the predicted vs actual member share."""
    metrics = compute_metrics(month[LABEL_COLUMN].to_numpy(), month[PROBABILITY_COLUMN].to_numpy())
    metrics["member_share_predicted"] = float((month[PREDICTED_COLUMN] == POSITIVE_LABEL).mean())
    metrics["member_share_actual"] = float((month[LABEL_COLUMN] == POSITIVE_LABEL).mean())
    return metrics


def decide(metrics: dict[str, float], validation_auc: float | None, drift_share: float, settings: Settings):
    """``(verdict, reasons)``: a breach when ROC AUC fell too far or too many features drifted."""
    reasons = []
    auc = metrics["roc_auc"]
    if validation_auc is not None and (
        math.isnan(auc) or validation_auc - auc > settings.monitor_max_auc_drop
    ):
        reasons.append(
            f"ROC AUC {auc:.4f} is more than {settings.monitor_max_auc_drop} below the validation "
            f"{validation_auc:.4f}"
        )
    if drift_share > settings.monitor_max_drift_share:
        reasons.append(
            f"{drift_share:.0%} of the features drifted (limit {settings.monitor_max_drift_share:.0%})"
        )
    return (BREACH if reasons else OK), reasons


def log_monitoring_run(
    client: MlflowClient, summary: dict[str, Any], html: Path, settings: Settings
) -> tuple[str, str | None]:
    """An MLflow run in the monitoring experiment holding the report, tagged with the model version."""
    experiment_id = ensure_experiment(client, MONITORING_EXPERIMENT)
    tags = {
        "period": summary["period"],
        "verdict": summary["verdict"],
        "model.name": settings.model_name,
        "model.version": summary["model_version"],
        "model.run_id": summary["run_id"],
    }
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"monitor-{summary['period']}", tags=tags
    ) as run:
        mlflow.log_metrics({k: v for k, v in summary["metrics"].items() if not math.isnan(v)})
        mlflow.log_metrics({f"drift_{k}": v for k, v in summary["drift_scores"].items()})
        mlflow.log_metric("drift_share", summary["drift_share"])
        mlflow.log_artifact(str(html))
        mlflow.log_dict(summary, SUMMARY_FILE)
    key = f"monitoring.{summary['period']}"
    client.set_model_version_tag(settings.model_name, summary["model_version"], key, summary["verdict"])
    return run.info.run_id, build_run_url(client.tracking_uri, experiment_id, run.info.run_id)


def publish_report(html: Path, summary: dict[str, Any], settings: Settings, workdir: Path) -> None:
    """The HTML report and the JSON summary on S3, each written whole or not at all."""
    storage.write_file_atomic(html, report_uri(settings, summary["period"]), settings)
    staged = workdir / SUMMARY_FILE
    staged.write_text(json.dumps(summary, sort_keys=True, indent=1))
    storage.move_file_atomic(staged, report_uri(settings, summary["period"], SUMMARY_FILE), settings)


def monitor_period(period: str, settings: Settings | None = None) -> dict[str, Any]:
    """Measure, compare and report one scored period; returns its JSON-ready summary."""
    settings = settings or load_settings()
    period = check_period(period)
    client = connect_tracking(settings.mlflow_tracking_uri, settings)
    with tempfile.TemporaryDirectory(prefix="to-bikes-monitor-") as name:
        workdir = Path(name)
        month = read_scored_month(settings, period, workdir)
        version, run_id = str(month["model_version"].iloc[0]), str(month["run_id"].iloc[0])
        reference = load_reference(run_id, workdir)
        metrics = measure_month(month)
        validation_auc = client.get_run(run_id).data.metrics.get("roc_auc")
        drift = build_report(month, reference, settings.monitor_max_drift_share)
        verdict, reasons = decide(metrics, validation_auc, drift.drift_share, settings)
        summary = {
            "period": period,
            "rows": len(month),
            "model_version": version,
            "run_id": run_id,
            "validation_roc_auc": validation_auc,
            "metrics": metrics,
            "drift_scores": drift.scores,
            "drifted": sorted(c for c, hit in drift.drifted.items() if hit),
            "drift_share": drift.drift_share,
            "verdict": verdict,
            "reasons": reasons,
            "report": report_uri(settings, period),
        }
        html = workdir / REPORT_FILE
        drift.report.save_html(str(html))
        monitoring_run, url = log_monitoring_run(client, summary, html, settings)
        summary.update(monitoring_run_id=monitoring_run, monitoring_run_url=url)
        publish_report(html, summary, settings, workdir)
    log.info("%s with version %s: %s %s", period, version, verdict, "; ".join(reasons))
    return summary
