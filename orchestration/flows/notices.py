"""The events a person is told about, emitted by the flows: the champion moved, a month's labels shifted.

Like the breach, month and withdrawn-file events, each names its period as the resource and the emitting
flow run as a related resource, so a notification automation (``orchestration.deploy.notifications``)
links to that run; the payload holds the period and the MLflow page. Emitted only by work done in this
run (a cached preprocessing or an unmoved alias emits nothing), so one change is one message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, runtime
from prefect.events import emit_event

from models.core.names import CHAMPION_CHANGED_EVENT, PERIOD_RESOURCE, QUALITY_WARNING_EVENT
from models.core.settings import Settings

if TYPE_CHECKING:
    from models.core.contracts import PreprocessSummary
    from models.registry.register import RegistrationResult


def flow_run_related() -> list[dict[str, str]]:
    """The emitting flow run as a related resource (none outside a flow run)."""
    if not runtime.flow_run.id:
        return []
    return [
        {
            "prefect.resource.id": f"prefect.flow-run.{runtime.flow_run.id}",
            "prefect.resource.role": "flow-run",
        }
    ]


def emit_period_event(event: str, period: str, payload: dict[str, Any]) -> Any:
    """One project event about ``period`` (resource ``to-bikes.period.<period>``)."""
    return emit_event(
        event=event,
        resource={
            "prefect.resource.id": PERIOD_RESOURCE.format(period=period),
            "prefect.resource.name": period,
        },
        related=flow_run_related(),
        payload={"period": period, **payload},
    )


def champion_moved(registration: RegistrationResult) -> bool:
    """Whether this registration moved the champion alias (a first champion included)."""
    return registration.champion_version != registration.previous_champion_version


def emit_champion_changed(registration: RegistrationResult, period: str) -> Any:
    """``to-bikes.champion.changed`` when the alias moved in this registration, else nothing."""
    if not champion_moved(registration):
        return None
    get_run_logger().info(
        "champion of %s moved from version %s to %s",
        registration.name,
        registration.previous_champion_version or "none",
        registration.champion_version,
    )
    payload = {
        "model": registration.name,
        "version": registration.champion_version,
        "previous_version": registration.previous_champion_version or "none",
        "reason": registration.reason,
        "mlflow_url": registration.version_url or registration.run_url,
    }
    return emit_period_event(CHAMPION_CHANGED_EVENT, period, payload)


def emit_quality_warnings(summary: PreprocessSummary, settings: Settings) -> list[Any]:
    """One ``to-bikes.data.quality-warning`` per month of a computed preprocessing whose member share
    moved more than 25 points from the previous month's (``models.data.label_shift``)."""
    from models.data.label_shift import find_label_shifts

    events = []
    for shift in find_label_shifts(summary, settings):
        get_run_logger().warning(
            "member share %.1f%% in %s vs %.1f%% in %s: event %s",
            shift["member_share"] * 100,
            shift["period"],
            shift["previous_share"] * 100,
            shift["previous_period"],
            QUALITY_WARNING_EVENT,
        )
        payload = {**shift, "report": summary.report, "mlflow_url": None}
        events.append(emit_period_event(QUALITY_WARNING_EVENT, shift["period"], payload))
    return events
