"""Prefect artifacts a person reads in the UI: data quality, model metrics, the MLflow run.

Built from what ``models.data.preprocess``, ``models.training.train`` and ``models.registry.register`` return;
nothing is recomputed here. Artifact keys are stable per period (or per model), so the UI shows each
key's history across runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from models.core.contracts import PreprocessSummary, TrainResult

if TYPE_CHECKING:
    from models.registry.register import RegistrationResult

NOT_SCORED = "-"


def artifact_key(*parts: str) -> str:
    """A valid artifact key: lowercase letters, digits and dashes."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text)


def quality_rows(summary: PreprocessSummary) -> list[dict[str, Any]]:
    """One row per number of the preprocessing summary: totals, reasons, eras, nulls, label shares."""
    rows = [
        {"measure": "rows_in", "value": summary.rows_in},
        {"measure": "rows_out", "value": summary.rows_out},
        {"measure": "quarantined", "value": summary.quarantined},
        {"measure": "other_period", "value": summary.other_period},
    ]
    rows += [{"measure": f"quarantined: {k}", "value": v} for k, v in summary.by_reason.items()]
    rows += [{"measure": f"rows of era {k}", "value": v} for k, v in summary.by_era.items()]
    rows += [{"measure": f"kept with null {k}", "value": v} for k, v in summary.kept_with_nulls.items()]
    rows += [{"measure": f"{label} share", "value": share} for label, share in summary.label_share.items()]
    rows += [{"measure": "warning", "value": text} for text in summary.warnings]
    return rows


def publish_quality(summary: PreprocessSummary, period: str, cached: bool) -> None:
    """The data-quality table of a period, with where its outputs are."""
    origin = "cached result: raw inputs and code unchanged" if cached else "computed in this run"
    description = (
        f"Preprocessing of {period} ({origin}). Trips: `{summary.output}`; quarantine: "
        f"`{summary.quarantine}`; full report: `{summary.report}`. Input digest "
        f"`{summary.input_digest}`."
    )
    create_table_artifact(
        key=artifact_key("data-quality", period), table=quality_rows(summary), description=description
    )


def metric_rows(result: TrainResult) -> list[dict[str, Any]]:
    """Each metric of the new model next to the baseline's and the previous champion's."""
    champion = result.champion_metrics or {}
    return [
        {
            "metric": name,
            "model": round(value, 4),
            "baseline": round(result.baseline_metrics.get(name, float("nan")), 4),
            "previous champion": round(champion[name], 4) if name in champion else NOT_SCORED,
        }
        for name, value in sorted(result.metrics.items())
    ]


def publish_training(result: TrainResult, registration: RegistrationResult) -> None:
    """Metrics table, gate decision and a link to the MLflow run."""
    verdict = "promoted to champion" if registration.promoted else "not promoted"
    description = (
        f"Validation month {result.valid_month}. Version {registration.version} of "
        f"`{registration.name}`: {verdict} ({registration.reason}). Champion is now version "
        f"{registration.champion_version}; the previous champion was version "
        f"{result.champion_version or 'none'}."
    )
    key = artifact_key(registration.name or "model", "metrics")
    create_table_artifact(key=key, table=metric_rows(result), description=description)
    if result.run_url:
        create_link_artifact(
            key=artifact_key("mlflow-run"),
            link=result.run_url,
            link_text=f"MLflow run {result.run_id}",
            description="The training run: parameters, metrics, plots, the model and its lineage tags.",
        )
    else:
        create_markdown_artifact(
            key=artifact_key("mlflow-run"), markdown=f"MLflow run `{result.run_id}` (no UI URL known)."
        )
