"""The MLflow runs of monitoring: one per monitored period, and how the score flow finds one again.

A monitoring run (experiment ``to-bikes-monitoring``) holds the Evidently report and the JSON summary,
tagged with the period, the model version, the processed data's checksum and the Prefect flow run; the
version gets a ``monitoring.<period>`` tag. ``find_monitoring`` looks a run up by those tags, so a month
already monitored with the same version and data is read back instead of monitored twice.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from models.core.names import MONITORING_EXPERIMENT
from models.core.settings import Settings, load_settings
from models.registry.gate import NONE
from models.registry.mlflow_client import build_run_url, connect_tracking
from models.scoring.drift import describe_drift
from models.training.lineage import read_flow_run_id
from models.training.mlflow_run import ensure_experiment

SUMMARY_FILE = "monitoring.json"
CHECKSUM_TAG, FLOW_RUN_TAG = "data.checksum", "prefect.flow_run_id"


def log_monitoring_run(
    client: MlflowClient, summary: dict[str, Any], html: Path, settings: Settings
) -> tuple[str, str | None]:
    """An MLflow run in the monitoring experiment holding the report, tagged with the model version."""
    experiment_id = ensure_experiment(client, MONITORING_EXPERIMENT)
    tags = {
        "period": summary["period"],
        "verdict": summary["verdict"],
        "sample": summary["sample"],
        "model.name": settings.model_name,
        "model.version": summary["model_version"],
        "model.run_id": summary["run_id"],
        CHECKSUM_TAG: summary.get("data_checksum") or NONE,
        FLOW_RUN_TAG: read_flow_run_id(),
    }
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"monitor-{summary['period']}", tags=tags
    ) as run:
        mlflow.log_metrics({k: v for k, v in summary["metrics"].items() if not math.isnan(v)})
        mlflow.log_metrics({f"drift_{k}": v for k, v in summary["drift_scores"].items()})
        mlflow.log_metric("drift_share", summary["drift_share"])
        mlflow.log_metric("drift_judged_features", len(summary["drift_judged"]))
        mlflow.set_tag("drift", describe_drift(summary))
        mlflow.log_artifact(str(html))
        mlflow.log_dict(summary, SUMMARY_FILE)
    key = f"monitoring.{summary['period']}"
    client.set_model_version_tag(settings.model_name, summary["model_version"], key, summary["verdict"])
    return run.info.run_id, build_run_url(client.tracking_uri, experiment_id, run.info.run_id)


def find_monitoring(
    period: str, version: str, data_checksum: str, settings: Settings | None = None
) -> dict[str, Any] | None:
    """The summary of the first finished monitoring of ``period`` by ``version`` on that data, or None.

    Read from the MLflow run (its ``monitoring.json``, with the run's id, link and flow run added).
    """
    settings = settings or load_settings()
    client = connect_tracking(settings.mlflow_tracking_uri, settings)
    experiment = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    if experiment is None:
        return None
    match = {"period": period, "model.name": settings.model_name, "model.version": version}
    match[CHECKSUM_TAG] = data_checksum
    filters = [f"tags.`{key}` = '{value}'" for key, value in match.items()]
    runs = client.search_runs(
        [experiment.experiment_id],
        " and ".join([*filters, "attributes.status = 'FINISHED'"]),
        max_results=1,
        order_by=["attributes.start_time ASC"],
    )
    if not runs:
        return None
    run = runs[0]
    summary = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/{SUMMARY_FILE}")
    url = build_run_url(client.tracking_uri, experiment.experiment_id, run.info.run_id)
    flow_run = run.data.tags.get(FLOW_RUN_TAG, NONE)
    return {**summary, "monitoring_run_id": run.info.run_id, "monitoring_run_url": url, "flow_run": flow_run}
