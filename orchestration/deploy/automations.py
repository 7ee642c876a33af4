"""``make deploy``'s Prefect automations for runs nobody is left to report: silent Running ones are
marked Crashed ("zombie" runs), stuck Pending ones are put back to Scheduled.

    agent/.venv/bin/python -m orchestration automations

A flow run whose process dies without reporting (kill -9 of the worker and its flow-run process, an
evicted container, a lost machine) would stay Running forever and overlap the next scheduled run.
Flow runs started by the project's worker send a ``prefect.flow-run.heartbeat`` event every
``TO_BIKES_HEARTBEAT_SECONDS`` (stack.worker, agent/entrypoint.sh). This automation is
Prefect's documented answer ("Detect zombie flows"): a proactive trigger that, after each heartbeat
of a flow run, expects another heartbeat or a final state of the same run within a Prefect outage
runs live through plus ``MISSED_HEARTBEATS`` heartbeat periods (``window_seconds``: 300 s), and
otherwise sets the run to Crashed. The server's
triggers service evaluates proactive triggers every 5 s, also on the local SQLite server.

Only runs tagged ``to-bikes`` are watched: the deployments of prefect.yaml carry the tag (a unit test
keeps them in step), and their heartbeat and state events name it. A flow called in-process from a
shell or a test beats on Prefect's default of 180 s and is not watched.

The second automation, ``to-bikes-reschedule-stuck-pending``: a worker killed while it submits a run
(after it set the run Pending or Submitting, Prefect's two Pending-type steps of a worker, before the
run's process set it Running) leaves the run there for good, since workers pick up Scheduled runs only
and a run that is not Running sends no heartbeat. After each Pending or Submitting event of a watched
run it expects any next state of the same run within ``TO_BIKES_PENDING_SECONDS`` (default 1800) and
otherwise sets the run back to Scheduled, where any worker takes it again. Submitting is both an
``after`` and an ``expect`` event, as the heartbeat is in the zombie trigger: it ends the wait that
Pending began and begins its own (``make soak`` found a run left Submitting when only Pending began one).

Idempotent: each automation is found by name; a missing one is created, a different one is updated
in place (same id), an equal one is left alone, and newer copies with the same name are deleted. The
window follows the setting, so run this with the same ``TO_BIKES_HEARTBEAT_SECONDS`` as the workers.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from models.core.names import STUCK_PENDING_AUTOMATION, ZOMBIE_AUTOMATION
from models.core.settings import Settings

log = logging.getLogger(__name__)

AUTOMATION_NAME = ZOMBIE_AUTOMATION
MISSED_HEARTBEATS = 3
CRASH_MESSAGE = "No heartbeat from this flow run's process for {seconds} s; marked Crashed by {name}."
FINAL_EVENTS = ("Completed", "Failed", "Cancelled", "Crashed")
PENDING_EVENTS = ("Pending", "Submitting")  # a worker's steps before the run's process sets it Running
RESCHEDULE_MESSAGE = (
    "Pending for {seconds} s without starting (its worker likely stopped while submitting it); "
    "scheduled again by {name}."
)
RUN_TAG = "to-bikes"  # the tag of every deployment in prefect.yaml


def window_seconds(heartbeat_seconds: int) -> int:
    """How long a run may stay silent: a Prefect outage the runs live through (API_OUTAGE_S: no beat
    reaches a stopped server) plus three heartbeat periods, so neither the outage nor one late beat is
    taken for a crash. With a shorter window the automation crashed a live run the moment the server
    came back from a 161 s outage (make soak; the run then completed: Crashed -> Completed)."""
    from orchestration.flows.api_loss import API_OUTAGE_S

    return API_OUTAGE_S + heartbeat_seconds * MISSED_HEARTBEATS


def silent_run_automation(
    name: str, description: str, after: set[str], expect: set[str], seconds: int, state: str, message: str
) -> Any:
    """A watched run with an ``after`` event and none of ``expect`` for ``seconds`` -> set to ``state``."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    trigger = EventTrigger(
        match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
        match_related=ResourceSpecification(
            {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{RUN_TAG}"}
        ),
        after=after,
        expect=expect,
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=timedelta(seconds=seconds),
    )
    action = ChangeFlowRunState(state=StateType(state.upper()), name=state, message=message)
    return AutomationCore(name=name, description=description, enabled=True, trigger=trigger, actions=[action])


def build_automation(heartbeat_seconds: int) -> Any:
    """The automation for runs that beat every ``heartbeat_seconds`` (Prefect's documented spec)."""
    window = window_seconds(heartbeat_seconds)
    return silent_run_automation(
        AUTOMATION_NAME,
        f"Crash a flow run that sent no heartbeat for {window} s (a Prefect outage it lives through, then "
        f"{MISSED_HEARTBEATS} missed beats of TO_BIKES_HEARTBEAT_SECONDS={heartbeat_seconds}); "
        "created by `make deploy`.",
        after={"prefect.flow-run.heartbeat"},
        expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{state}" for state in FINAL_EVENTS)},
        seconds=window,
        state="Crashed",
        message=CRASH_MESSAGE.format(seconds=window, name=AUTOMATION_NAME),
    )


def build_pending_automation(pending_seconds: int) -> Any:
    """A watched run Pending or Submitting for ``pending_seconds`` with no next state -> Scheduled again."""
    return silent_run_automation(
        STUCK_PENDING_AUTOMATION,
        f"Schedule again a flow run Pending or Submitting for {pending_seconds} s without starting "
        "(TO_BIKES_PENDING_SECONDS); created by `make deploy`.",
        after={f"prefect.flow-run.{step}" for step in PENDING_EVENTS},
        expect={"prefect.flow-run.*"},  # Running, or anything else that ends the wait (Cancelling, ...)
        seconds=pending_seconds,
        state="Scheduled",
        message=RESCHEDULE_MESSAGE.format(seconds=pending_seconds, name=STUCK_PENDING_AUTOMATION),
    )


def comparable_spec(automation: Any) -> dict[str, Any]:
    """What the automation does, without server-assigned ids, for an equality check."""
    spec = automation.model_dump(
        mode="json", include={"name", "description", "enabled", "trigger", "actions"}
    )
    trigger = spec["trigger"]
    trigger.pop("id", None)
    for field in ("after", "expect", "for_each"):  # sets: their JSON order is arbitrary
        trigger[field] = sorted(trigger.get(field) or [])
    return spec


def read_named_oldest_first(client: Any, name: str) -> list[Any]:
    """Every automation called ``name``, the oldest (the one to keep) first."""
    from prefect.client.schemas.sorting import AutomationSort
    from prefect.events.filters import AutomationFilter, AutomationFilterName

    query = AutomationFilter(name=AutomationFilterName(any_=[name]))
    newest_first = client.read_automations(automations=query, sort=AutomationSort.CREATED_DESC)
    return [automation for automation in reversed(newest_first) if automation.name == name]


def ensure_automation(wanted: Any) -> str:
    """Create, update in place or keep the automation named like ``wanted``; one line of outcome."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = read_named_oldest_first(client, wanted.name)
        if not found:
            client.create_automation(wanted)
            outcome = "created"
        elif comparable_spec(found[0]) == comparable_spec(wanted):
            outcome = "unchanged"
        else:
            client.update_automation(found[0].id, wanted)
            outcome = "updated"
        for extra in found[1:]:
            client.delete_automation(extra.id)
    if len(found) > 1:
        outcome += f", {len(found) - 1} duplicate(s) deleted"
    log.info("automation %s: %s", wanted.name, outcome)
    return f"Automation/{wanted.name}: {outcome}"


def save_automations(settings: Settings) -> list[str]:
    """Check the API, then ensure the zombie and stuck-Pending automations for the settings."""
    from stack.prefect_api import require_prefect_api

    require_prefect_api(settings)
    line = ensure_automation(build_automation(settings.heartbeat_seconds))
    window = window_seconds(settings.heartbeat_seconds)
    pending = ensure_automation(build_pending_automation(settings.pending_seconds))
    return [
        f"{line} (a run silent for {window} s becomes Crashed)",
        f"{pending} (a run Pending or Submitting for {settings.pending_seconds} s is scheduled again)",
    ]
