"""The ``score`` flow: predictions and monitoring for one period, and an event when the month breaches.

Thin Prefect wrappers over ``models.scoring``: the period is preprocessed first (the pipeline's own cached
steps, so a month already processed costs a cache lookup), scored with the champion into
``predictions/<period>/`` and monitored (Evidently report in ``reports/<period>/`` and in an MLflow run).
Scoring is cached on the processed file's checksum and the champion's version. Monitoring happens once
per period, champion version and processed data, whoever starts it (the automation, ``make score``, both
at once): the flow run holds a one-slot lock named for the period and the version
(``orchestration.flows.work_locks``) around scoring and monitoring, and inside it first looks for that
monitoring in MLflow (``models.scoring.monitor.find_monitoring``); a run that finds one says "already
scored by" its link. Only a month monitored in this run emits ``to-bikes.monitoring.breach`` (so a
retrain that keeps the champion does not start another).
Deployed by ``prefect.yaml`` (queue ``score``); ``orchestration.deploy.loop_automations`` starts it
after every pipeline or preprocess run and retrains on a breach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE, CachePolicy
from prefect.utilities.hashing import hash_objects

from models.core import s3
from models.core.names import BREACH_EVENT, DEFAULT_MIN_DURATION_S
from models.core.periods import format_period
from models.core.settings import Settings
from orchestration.flows.api_loss import ending_on_api_loss
from orchestration.flows.caching import is_transient, object_checksum, results_storage
from orchestration.flows.months import report_months
from orchestration.flows.notices import emit_period_event
from orchestration.flows.pipeline import IO_RETRIES, find_latest_year, preprocess_period_steps, start_flow_run
from orchestration.flows.reports import artifact_key
from orchestration.flows.work_locks import hold_work_lock, name_work

if TYPE_CHECKING:
    from prefect.states import State

HISTORY_KEY = "monitoring-history"


@dataclass
class ProcessedChecksum(CachePolicy):
    """Cache key part: the checksum of the processed trips of the task's ``period``."""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        from models.scoring.score import processed_uri

        settings = inputs["settings"]
        return hash_objects(object_checksum(processed_uri(settings, inputs["period"]), settings))


# TASK_SOURCE: a change to the scoring task scores again (monitoring is found in MLflow instead).
SCORE_CACHE = INPUTS - "settings" + ProcessedChecksum() + TASK_SOURCE


@task(name="read-champion", cache_policy=NO_CACHE, **IO_RETRIES)
def read_champion(settings: Settings) -> str:
    """The version the champion alias names now (part of the scoring cache key)."""
    from models.registry.mlflow_client import connect_tracking
    from models.scoring.score import champion_version

    return champion_version(connect_tracking(settings.mlflow_tracking_uri, settings), settings)


@task(name="score-period", cache_policy=SCORE_CACHE, persist_result=True, retry_condition_fn=is_transient)
def score_period(period: str, model_version: str, settings: Settings) -> dict[str, Any]:
    """``models.scoring.score.score_period`` with that exact version (the alias may move meanwhile)."""
    from models.scoring.score import score_period as score

    return score(period, settings, model_version=model_version).to_dict()


@task(name="monitor-period", cache_policy=NO_CACHE)
def monitor_period(period: str, model_version: str, data_checksum: str, settings: Settings) -> dict[str, Any]:
    """``models.scoring.monitor.monitor_period``: one Evidently report and one MLflow monitoring run."""
    from models.scoring.monitor import monitor_period as monitor

    return monitor(period, settings, data_checksum=data_checksum)


@task(name="find-monitoring", cache_policy=NO_CACHE, **IO_RETRIES)
def find_monitoring(period: str, model_version: str, data_checksum: str, settings: Settings) -> dict | None:
    """``models.scoring.monitor.find_monitoring``: the monitoring already made, if any."""
    from models.scoring.monitoring_runs import find_monitoring as find

    return find(period, model_version, data_checksum, settings)


@task(name="read-processed-checksum", cache_policy=NO_CACHE, **IO_RETRIES)
def read_processed_checksum(period: str, settings: Settings) -> str:
    """A digest of the processed trips' checksum and size (what the scoring cache key holds too)."""
    from models.scoring.score import processed_uri

    return hash_objects(object_checksum(processed_uri(settings, period), settings))


@task(name="read-monitoring-history", cache_policy=NO_CACHE, **IO_RETRIES)
def read_history(settings: Settings) -> list[dict[str, Any]]:
    """Every monitored period's row (``models.scoring.history``)."""
    from models.scoring.history import read_history as read

    return read(settings)


def run_cached(step: Any, output_uri: str, period: str, version: str, settings: Settings):
    """Run a cached step; run it again when its cached output has vanished from S3."""
    cached_task = step.with_options(result_storage=results_storage(), result_serializer="json")
    state = cached_task(period, version, settings, return_state=True)
    if state.name == "Cached" and not s3.object_exists(output_uri, settings):
        get_run_logger().warning("cached output %s is missing; running %s again", output_uri, step.name)
        state = cached_task.with_options(refresh_cache=True)(period, version, settings, return_state=True)
    return state.result(), state.name == "Cached"


def describe_found(found: dict[str, Any]) -> str:
    """Where an earlier monitoring of the same month, version and data came from."""
    link = found.get("monitoring_run_url") or found["monitoring_run_id"]
    flow_run = found.get("flow_run") or "none"
    return f"already scored by {link}" + (f" (flow run {flow_run})" if flow_run != "none" else "")


def score_and_monitor(period: str, version: str, settings: Settings) -> tuple[dict, dict, str, bool]:
    """Score and monitor ``period`` with ``version`` once: ``(scored, summary, origin, computed_now)``.

    One flow run at a time per period and version; an earlier monitoring of the same data is read back.
    """
    from models.scoring.score import predictions_uri

    target = (period, version, settings.bucket, settings.mlflow_tracking_uri, settings.model_name)
    with hold_work_lock(name_work("monitor", *target)):
        scored, score_cached = run_cached(
            score_period, predictions_uri(settings, period), period, version, settings
        )
        predictions = "predictions cached" if score_cached else "predictions computed"
        checksum = read_processed_checksum(period, settings)
        found = find_monitoring(period, version, checksum, settings)
        if found is not None:
            return scored, found, f"{describe_found(found)}; {predictions}", False
        summary = monitor_period(period, version, checksum, settings)
    return scored, summary, f"computed in this run; {predictions}", True


def publish_verdict(
    summary: dict[str, Any], origin: str, history: list[dict[str, Any]], report_link: str | None = None
) -> None:
    """The month's verdict with its report links (``report_link``: http), and the month-by-month table."""
    from models.scoring.drift import describe_drift

    link = summary.get("monitoring_run_url") or summary["monitoring_run_id"]
    reasons = "; ".join(summary["reasons"]) or "within the thresholds"
    metrics = summary["metrics"]
    markdown = (
        f"# {summary['period']}: **{summary['verdict'].upper()}** ({reasons})\n\n"
        f"Champion version {summary['model_version']} on {summary['rows']} trips ({origin}). "
        f"ROC AUC {metrics['roc_auc']:.4f} (validation {summary['validation_roc_auc'] or float('nan'):.4f}), "
        f"PR AUC casual {metrics['pr_auc_casual']:.4f}, F1 member {metrics['f1_member']:.4f}, "
        f"F1 casual {metrics['f1_casual']:.4f}; member share predicted "
        f"{metrics['member_share_predicted']:.1%} vs actual {metrics['member_share_actual']:.1%}; "
        f"{describe_drift(summary)}.\n\n"
        f"Evidently report: {f'[open it]({report_link}) (a link valid for a week)' if report_link else ''} "
        f"`{summary['report']}`; MLflow monitoring run: {link}"
    )
    create_markdown_artifact(key=artifact_key("monitoring", summary["period"]), markdown=markdown)
    create_table_artifact(
        key=HISTORY_KEY,
        table=history,
        description="Every scored month so far, one row each; sample in-sample: the champion trained on it.",
    )


def emit_breach(summary: dict[str, Any], year: int, month: int | None) -> Any:
    """The Prefect event the retrain automation listens for; the period is its resource."""
    payload = {key: summary[key] for key in ("model_version", "reasons", "report")}
    return emit_period_event(BREACH_EVENT, summary["period"], {"year": year, "month": month, **payload})


@flow(name="score")
def score_flow(year: int | None = None, month: int | None = None) -> State:
    """Preprocess (cached), score with the champion, monitor once; a breach computed now emits the event.

    The Completed state's message (printed by ``make score``) says whether this run monitored the month or
    found it already scored, and by whom.
    """
    from prefect.states import Completed

    from models.scoring.monitor import report_link

    settings = start_flow_run()
    with ending_on_api_loss(settings):
        year = year if year is not None else find_latest_year(settings)
        period = format_period(year, month)
        preprocess_period_steps(settings, year, month, DEFAULT_MIN_DURATION_S)
        version = read_champion(settings)
        scored, summary, origin, computed = score_and_monitor(period, version, settings)
        publish_verdict(summary, origin, read_history(settings), report_link(settings, summary["report"]))
        breach = summary["verdict"] == "breach" and computed
        event = emit_breach(summary, year, month) if breach else None
        report_months(settings)
    message = f"{period} with version {version}: {summary['verdict']}; monitoring {origin}"
    get_run_logger().info(
        "%s: %s trips -> %s; %s%s; report %s",
        period,
        scored["rows"],
        scored["output"],
        message,
        f" (event {event.id} emitted)" if event else "",
        summary["report"],
    )
    result = {
        "scored": scored,
        "monitoring": summary,
        "cached": not computed,
        "origin": origin,
        "event_id": str(event.id) if event else None,
    }
    return Completed(message=message, data=result)
