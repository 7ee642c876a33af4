"""Prefect artifacts a person reads in the UI: data quality, model metrics, the MLflow run.

Built from what ``models.data.preprocess``, ``models.training.train`` and ``models.registry.register`` return;
nothing is recomputed here. Artifact keys are stable per period (or per model), so the UI shows each
key's history across runs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from models.core.contracts import PreprocessSummary, TrainResult

if TYPE_CHECKING:
    from prefect.states import State

    from models.registry.register import RegistrationResult

log = logging.getLogger(__name__)

NO_CHAMPION = "none"  # no previous champion, or no month to compare on
NOT_COMPARED = "not compared"


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


def champion_column(result: TrainResult) -> str:
    """The previous champion's column: its name says on which month it was scored."""
    if result.champion_metrics and result.compared_on != result.valid_month:
        return f"previous champion on {result.compared_on}"
    return "previous champion"


def champion_cell(result: TrainResult, name: str) -> Any:
    """The champion's value of a metric, "none" without a champion, "not compared" when unscored."""
    if result.champion_version is None:
        return NO_CHAMPION
    if not result.champion_metrics or name not in result.champion_metrics:
        return NOT_COMPARED
    return round(result.champion_metrics[name], 4)


def metric_rows(result: TrainResult) -> list[dict[str, Any]]:
    """Each metric of the new model next to the baseline's and the previous champion's.

    When the champion was compared on a later month than the validation month (it had trained on
    that one), the new model's scores on the compared month get a column of their own.
    """
    later = bool(result.champion_metrics) and result.compared_on != result.valid_month
    rows = []
    for name, value in sorted(result.metrics.items()):
        row = {
            "metric": name,
            "model": round(value, 4),
            "baseline": round(result.baseline_metrics.get(name, float("nan")), 4),
        }
        if later:
            row[f"model on {result.compared_on}"] = round((result.compared_metrics or {})[name], 4)
        rows.append({**row, champion_column(result): champion_cell(result, name)})
    return rows


def describe_decision(result: TrainResult, registration: RegistrationResult) -> str:
    """The artifact's text: the months, the decision and why, where the champion is now.

    A rerun says so, and where its own outcome is recorded: the first decision's tags stay as they were.
    """
    from models.registry.gate import ALREADY, describe_verdict

    if registration.decision == ALREADY:
        verdict = describe_verdict(ALREADY)
    else:
        verdict = "promoted to champion" if registration.promoted else "not promoted"
    if result.champion_version is None:
        compared = "no previous champion to compare with"
    elif registration.compared_on is None:
        compared = "not compared with the champion"
    else:
        compared = f"compared with the champion on {registration.compared_on}"
    return (
        f"Trained on {result.train_months or 'unknown months'}, validated on {result.valid_month}; "
        f"{compared}. Version "
        f"{registration.version} of `{registration.name}`: {verdict}. {registration.reason} Champion is "
        f"now version {registration.champion_version}; the previous champion was version "
        f"{result.champion_version or NO_CHAMPION}.{describe_rerun(registration)}"
    )


def describe_rerun(registration: RegistrationResult) -> str:
    """For a rerun, where its outcome went (the training run's first decision is left as it was)."""
    if not registration.rerun_record:
        return ""
    return (
        f" This registration repeats an earlier one: its outcome is tag `{registration.rerun_record}` of "
        f"run {registration.run_id}, whose first decision (tags gate.decision, gate.reason) stands."
    )


def publish_training(result: TrainResult, registration: RegistrationResult) -> None:
    """Metrics table, gate decision (with the month compared on) and links to the MLflow run and version."""
    key = artifact_key(registration.name or "model", "metrics")
    description = describe_decision(result, registration)
    create_table_artifact(key=key, table=metric_rows(result), description=description)
    run_url = registration.run_url or result.run_url
    if run_url:
        create_link_artifact(
            key=artifact_key("mlflow-run"),
            link=run_url,
            link_text=f"MLflow run {result.run_id}",
            description="The training run: parameters, metrics, plots, the model and its lineage tags.",
        )
    else:
        create_markdown_artifact(
            key=artifact_key("mlflow-run"), markdown=f"MLflow run `{result.run_id}` (no UI URL known)."
        )
    if registration.version_url:
        create_link_artifact(
            key=artifact_key("mlflow-model-version"),
            link=registration.version_url,
            link_text=f"{registration.name} version {registration.version}",
            description=f"The registered version; the gate decided: {registration.reason}",
        )


def training_summary(result: TrainResult, registration: RegistrationResult, cached: bool) -> dict[str, Any]:
    """What a training flow returns: the run, its scores and the gate's decision on its version."""
    return {
        "run_id": result.run_id,
        "run_url": registration.run_url or result.run_url,
        "version_url": registration.version_url,
        "metrics": result.metrics,
        "baseline_metrics": result.baseline_metrics,
        "valid_month": result.valid_month,
        "train_months": result.train_months,
        "version": registration.version,
        "promoted": registration.promoted,
        "decision": registration.decision,
        "reason": registration.reason,
        "compared_on": registration.compared_on,
        "challenger_score": registration.challenger_score,
        "champion_score": registration.champion_score,
        "champion_version": registration.champion_version,
        "previous_champion_version": result.champion_version,
        "training_cached": cached,
        "rerun_record": registration.rerun_record,
    }


def run_label(summary: dict[str, Any]) -> tuple[str, list[str]]:
    """The flow run's name and extra tags once registered: period, version and the gate's decision."""
    period = summary.get("period") or summary.get("valid_month") or "period?"
    name = f"{period} v{summary['version']} {summary['decision']}"
    return name, [f"model-version:{summary['version']}", f"gate:{summary['decision']}"]


def label_flow_run(summary: dict[str, Any]) -> None:
    """Rename and tag the running flow run with ``run_label``: lists and the run page's header show the
    version and decision without opening Details (the header's state only says Completed)."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    if flow_run.id is None:
        return  # called outside a flow run (tests): nothing to label
    name, tags = run_label(summary)
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, name=name, tags=sorted({*flow_run.tags, *tags}))
    except httpx.HTTPError as exc:
        log.warning("could not rename flow run %s to %r: %s", flow_run.id, name, exc)


def registered_state(summary: dict[str, Any], model_name: str) -> State:
    """A Completed state holding ``summary`` whose message (the run's line in the UI) names the version;
    the flow run's name and tags say the same (``label_flow_run``).

    A rerun (``rerun_record``) registered nothing: its message says what it found, and which run it reused.
    """
    from prefect.states import Completed

    from models.registry.gate import describe_verdict

    label_flow_run(summary)
    if not summary.get("rerun_record"):
        message = f"registered version {summary['version']} of {model_name}: {summary['decision']}"
        return Completed(message=message, data=summary)
    message = f"version {summary['version']} of {model_name}: {describe_verdict(summary['decision'])}"
    if summary.get("training_cached"):
        message += f"; reused run {summary['run_id']}"
    return Completed(message=message, data=summary)
