"""``make blocks``'s notification block and ``make deploy``'s notification automations (off by default).

    agent/.venv/bin/python -m orchestration notifications

With ``TO_BIKES_NOTIFY_URL`` set, ``make blocks`` saves Prefect's own notification block ``to-bikes-notify``
(``TO_BIKES_NOTIFY_KIND``: ``webhook``, a ``CustomWebhookNotificationBlock`` posting JSON ``{"subject",
"text"}``, or ``slack``, a ``SlackWebhook``); the URL is kept as the block's secret. ``make deploy`` then
ensures one automation per kind of event, each a ``SendNotification`` of that block, so the Prefect
server's triggers and actions services send one message per event:

- a flow run of the project's deployments (tag ``to-bikes``) that ends Failed or Crashed;
- ``to-bikes.monitoring.breach`` (orchestration.flows.scoring), ``to-bikes.champion.changed`` and
  ``to-bikes.data.quality-warning`` (orchestration.flows.notices), ``to-bikes.file.withdrawn`` (ingest).

Each message says what happened and the period, with http links to the Prefect flow run
(``PREFECT_UI_URL``/runs/flow-run/<id>: the run itself or the one that emitted the event) and to the MLflow
page (the event's, else the experiments page). Messages are built from event fields and settings that hold
no secret. With the URL empty, the automations are deleted if ``make deploy`` had made them before.
"""

from __future__ import annotations

from string import Template
from typing import Any

from models.core.names import (
    BREACH_EVENT,
    CHAMPION_CHANGED_EVENT,
    FILE_WITHDRAWN_EVENT,
    NOTIFY_BLOCK,
    QUALITY_WARNING_EVENT,
)
from models.core.settings import Settings
from orchestration.deploy.automations import RUN_TAG, ensure_automation, read_named_oldest_first

FLOW_RUN_FAILED = "to-bikes-notify-flow-run-failed"
PERIOD = (
    "{{ flow_run.parameters.get('year') or 'latest year' }}"
    "{% if flow_run.parameters.get('month') %}-{{ '%02d' % flow_run.parameters.get('month') }}{% endif %}"
)
LINKS = "\nPrefect flow run: $prefect_ui/runs/flow-run/{{ flow_run.id }}\nMLflow: $mlflow_url"
PAYLOAD_LINKS = LINKS.replace("$mlflow_url", "{{ event.payload.get('mlflow_url') or '$mlflow_url' }}")
# name, the events it matches (resource), subject, body: Jinja over the event and its flow run.
EVENT_NOTICES = (
    (
        "to-bikes-notify-breach",
        BREACH_EVENT,
        "to-bikes.period.*",
        "to-bikes: monitoring breach in {{ event.payload.period }}",
        "Monitoring breach: champion version {{ event.payload.model_version }} on "
        "{{ event.payload.period }}: {{ event.payload.reasons | join('; ') }}.\n"
        "Period: {{ event.payload.period }}\nReport: {{ event.payload.report }}",
    ),
    (
        "to-bikes-notify-champion-changed",
        CHAMPION_CHANGED_EVENT,
        "to-bikes.period.*",
        "to-bikes: champion is now version {{ event.payload.version }}",
        "Champion changed: {{ event.payload.model }} version {{ event.payload.version }} replaced version "
        "{{ event.payload.previous_version }}. {{ event.payload.reason }}\n"
        "Period: {{ event.payload.period }}",
    ),
    (
        "to-bikes-notify-file-withdrawn",
        FILE_WITHDRAWN_EVENT,
        "to-bikes.file.*",
        "to-bikes: file withdrawn by the City: {{ event.payload.key }}",
        "File withdrawn: the City's portal no longer publishes s3://{{ event.payload.bucket }}/"
        "{{ event.payload.key }} (kept on S3, not deleted).\nPeriod: {{ event.payload.key.split('/')[-2] }}",
    ),
    (
        "to-bikes-notify-quality-warning",
        QUALITY_WARNING_EVENT,
        "to-bikes.period.*",
        "to-bikes: member share moved in {{ event.payload.period }}",
        "Data-quality warning: member share {{ '%.1f' % (event.payload.member_share * 100) }}% in "
        "{{ event.payload.period }} vs {{ '%.1f' % (event.payload.previous_share * 100) }}% in "
        "{{ event.payload.previous_period }} (moved more than 25 points); check the labels before "
        "training on it.\nPeriod: {{ event.payload.period }}\nReport: {{ event.payload.report }}",
    ),
)
NAMES = (FLOW_RUN_FAILED, *(notice[0] for notice in EVENT_NOTICES))


def build_block(settings: Settings) -> Any:
    """Prefect's notification block for the configured URL and kind (the URL as the block's secret)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
    from pydantic import SecretStr

    url = settings.notify_url.get_secret_value() if settings.notify_url else ""
    if settings.notify_kind == "slack":
        return SlackWebhook(url=SecretStr(url))
    return CustomWebhookNotificationBlock(
        name="to-bikes",
        url="{{url}}",
        method="POST",
        json_data={"subject": "{{subject}}", "text": "{{body}}"},
        secrets={"url": url},
    )


def links(settings: Settings, text: str) -> str:
    """``text`` with the Prefect UI and MLflow addresses of the settings put in (no secret in either)."""
    from models.registry.mlflow_client import build_ui_url

    mlflow_url = build_ui_url(settings.mlflow_tracking_uri, "experiments") or "(no MLflow UI)"
    return Template(text).safe_substitute(prefect_ui=settings.prefect_ui_url, mlflow_url=mlflow_url)


def build_failed_run_notice(block_id: Any, settings: Settings) -> Any:
    """A project flow run that ended Failed or Crashed -> one message."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    trigger = EventTrigger(
        match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
        match_related=ResourceSpecification(
            {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{RUN_TAG}"}
        ),
        expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
        posture=Posture.Reactive,
        threshold=1,
    )
    body = (
        "Flow run {{ flow.name }}/{{ flow_run.name }} ended {{ flow_run.state_name }}: "
        "{{ flow_run.state.message }}\nPeriod: " + PERIOD + LINKS
    )
    subject = "to-bikes: flow run {{ flow_run.name }} {{ flow_run.state_name }} (" + PERIOD + ")"
    return AutomationCore(
        name=FLOW_RUN_FAILED,
        description="Notify on a to-bikes flow run that Failed or Crashed; created by `make deploy`.",
        enabled=True,
        trigger=trigger,
        actions=[SendNotification(block_document_id=block_id, subject=subject, body=links(settings, body))],
    )


def build_event_notice(block_id: Any, settings: Settings, notice: tuple[str, ...]) -> Any:
    """Each event of one project kind -> one message."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    name, event, resources, subject, body = notice
    trigger = EventTrigger(
        match=ResourceSpecification({"prefect.resource.id": resources}),
        expect={event},
        posture=Posture.Reactive,
        threshold=1,
    )
    return AutomationCore(
        name=name,
        description=f"Notify on each {event} event; created by `make deploy`.",
        enabled=True,
        trigger=trigger,
        actions=[
            SendNotification(
                block_document_id=block_id, subject=subject, body=links(settings, body + PAYLOAD_LINKS)
            )
        ],
    )


def read_block_id(settings: Settings) -> Any:
    """The saved notification block's document id; missing is one sentence naming the fix."""
    from models.core.errors import UserError

    block = build_block(settings)
    try:
        return type(block).load(NOTIFY_BLOCK)._block_document_id
    except ValueError as exc:
        raise UserError(f"No notification block {NOTIFY_BLOCK!r} on this API; run `make blocks`.") from exc


def delete_notices() -> list[str]:
    """Notifications off: delete the automations an earlier ``make deploy`` made."""
    from prefect.client.orchestration import get_client

    lines = []
    with get_client(sync_client=True) as client:
        for name in NAMES:
            for found in read_named_oldest_first(client, name):
                client.delete_automation(found.id)
                lines.append(f"Automation/{name}: deleted (TO_BIKES_NOTIFY_URL is empty)")
    return lines or ["notifications: off (TO_BIKES_NOTIFY_URL is empty)"]


def save_notices(settings: Settings) -> list[str]:
    """Ensure the notification automations when notifications are on, else remove them; one line each."""
    if not settings.notify_enabled:
        return delete_notices()
    block_id = read_block_id(settings)
    wanted = [build_failed_run_notice(block_id, settings)]
    wanted += [build_event_notice(block_id, settings, notice) for notice in EVENT_NOTICES]
    return [ensure_automation(automation) + f" ({settings.notify_kind})" for automation in wanted]
