"""Monitoring a scored month: its real performance, drift against the reference, and a verdict.

    python -m models monitor --period 2025-12

Every trip carries its true label, so a month's actual ROC AUC, PR AUC (casual), F1 per class and
member shares are known once it is scored. The month is compared with the model's own validation ROC
AUC (``TO_BIKES_MONITOR_MAX_AUC_DROP``) and with the reference sample kept with the model version
(``models.scoring.reference``: held-out trips of its validation month), feature by feature (Evidently,
``TO_BIKES_MONITOR_MAX_DRIFT_SHARE`` of the features that can be judged: ``models.scoring.drift``). A
period the champion trained on is ``in-sample`` (``models.scoring.window``): its figures cannot show a
worse model, so it never breaches; its drift is still measured and shown.
The Evidently HTML report and a JSON summary go to ``reports/<period>/`` on S3 and into an MLflow
monitoring run tagged with the model version; the version gets a ``monitoring.<period>`` tag.
Given the processed data's checksum, the run records it (``models.scoring.monitoring_runs``), where the
score flow finds it again: one period, version and data is monitored once (``orchestration.flows.scoring``).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from models.core import storage
from models.core.errors import UserError
from models.core.names import POSITIVE_LABEL
from models.core.periods import check_period
from models.core.settings import Settings, load_settings
from models.data.features import FEATURE_COLUMNS, LABEL_COLUMN
from models.registry.mlflow_client import connect_tracking
from models.scoring.drift import build_report
from models.scoring.monitoring_runs import SUMMARY_FILE, log_monitoring_run
from models.scoring.reference import (
    PREDICTED_COLUMN,
    PROBABILITY_COLUMN,
    REFERENCE_MONTH_TAG,
    load_reference,
)
from models.scoring.score import PREDICTION_COLUMNS, predictions_uri, processed_uri
from models.scoring.window import Coverage, classify_period, read_champion_window
from models.training.dataset import localise_input, read_parquet_columns
from models.training.metrics import compute_metrics

log = logging.getLogger(__name__)

REPORT_FILE = "monitoring.html"
OK, BREACH, IN_SAMPLE = "ok", "breach", "in-sample"


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


def decide(
    metrics: dict[str, float],
    validation_auc: float | None,
    drift_share: float,
    settings: Settings,
    coverage: Coverage | None = None,
):
    """``(verdict, reasons)``: a breach when ROC AUC fell too far or too many judged features drifted.

    An in-sample period (``coverage``) is ``in-sample`` whatever its figures: its AUC is not compared,
    and its drift is listed among the reasons for a person to read, not counted as a breach.
    """
    reasons = []
    auc = metrics["roc_auc"]
    in_sample = coverage is not None and coverage.in_sample
    if in_sample:
        reasons.append(coverage.note)
    elif validation_auc is not None and (
        math.isnan(auc) or validation_auc - auc > settings.monitor_max_auc_drop
    ):
        reasons.append(
            f"ROC AUC {auc:.4f} is more than {settings.monitor_max_auc_drop} below the validation "
            f"{validation_auc:.4f}"
        )
    if drift_share > settings.monitor_max_drift_share:
        reasons.append(
            f"{drift_share:.0%} of the judged features drifted (limit {settings.monitor_max_drift_share:.0%})"
        )
    if in_sample:
        return IN_SAMPLE, reasons
    return (BREACH if reasons else OK), reasons


def describe_reference(tags: dict[str, str]) -> str:
    """What the drift is measured against: held-out validation trips, or (older runs) training trips."""
    month = tags.get(REFERENCE_MONTH_TAG)
    if month:
        return f"{month} (the champion's validation month, held out from training)"
    return "a sample of the champion's training trips (in-sample: retrain for a held-out reference)"


def publish_report(html: Path, summary: dict[str, Any], settings: Settings, workdir: Path) -> None:
    """The HTML report and the JSON summary on S3, each written whole or not at all."""
    storage.write_file_atomic(html, report_uri(settings, summary["period"]), settings)
    staged = workdir / SUMMARY_FILE
    staged.write_text(json.dumps(summary, sort_keys=True, indent=1))
    storage.move_file_atomic(staged, report_uri(settings, summary["period"], SUMMARY_FILE), settings)


def monitor_period(
    period: str, settings: Settings | None = None, data_checksum: str | None = None
) -> dict[str, Any]:
    """Measure, compare and report one scored period; returns its JSON-ready summary.

    ``data_checksum`` (of the processed trips) is recorded so that ``find_monitoring`` can find the run.
    """
    settings = settings or load_settings()
    period = check_period(period)
    client = connect_tracking(settings.mlflow_tracking_uri, settings)
    with tempfile.TemporaryDirectory(prefix="to-bikes-monitor-") as name:
        workdir = Path(name)
        month = read_scored_month(settings, period, workdir)
        version, run_id = str(month["model_version"].iloc[0]), str(month["run_id"].iloc[0])
        reference = load_reference(run_id, workdir)
        window = read_champion_window(client, settings.model_name, version)
        coverage = classify_period(period, window, version)
        metrics = measure_month(month)
        training_run = client.get_run(run_id)
        validation_auc = training_run.data.metrics.get("roc_auc")
        drift = build_report(month, reference, settings.monitor_max_drift_share)
        verdict, reasons = decide(metrics, validation_auc, drift.drift_share, settings, coverage)
        summary = {
            "period": period,
            "rows": len(month),
            "model_version": version,
            "run_id": run_id,
            "sample": coverage.kind,
            "sample_note": coverage.note,
            "reference": describe_reference(training_run.data.tags),
            "validation_roc_auc": validation_auc,
            "metrics": metrics,
            **drift.summarise(),
            "verdict": verdict,
            "reasons": reasons,
            "report": report_uri(settings, period),
            "data_checksum": data_checksum,
        }
        html = workdir / REPORT_FILE
        drift.report.save_html(str(html))
        monitoring_run, url = log_monitoring_run(client, summary, html, settings)
        summary.update(monitoring_run_id=monitoring_run, monitoring_run_url=url)
        publish_report(html, summary, settings, workdir)
    log.info("%s with version %s: %s %s", period, version, verdict, "; ".join(reasons))
    return summary
