"""``make deploy``'s automations that close the loop: a pipeline per changed month, score after
preprocessing, retrain on a breach.

    agent/.venv/bin/python -m orchestration loop-automations

- ``to-bikes-pipeline-on-month``: on each ``to-bikes.month.changed`` event (the ingest flow,
  orchestration/flows/ingest.py, emits one per month whose trips it added or changed), run the pipeline
  deployment for that month. Months are events: no deployment polls S3 for new data.
- ``to-bikes-score-after-preprocess``: when a ``to-bikes-pipeline`` or ``preprocess`` flow run of the
  project's deployments Completes, run the ``score`` deployment for the same year and month (the
  run's own parameters; none means the latest year, as for those flows). Scoring therefore follows every
  preprocessed period on its own, scheduled or not, and no second schedule has to be kept in step.
- ``to-bikes-retrain-on-breach``: on each ``to-bikes.monitoring.breach`` event (orchestration.flows.scoring),
  run the pipeline deployment for the breached month: preprocess (cached), train on it with the months
  before, and let the champion/challenger gate decide as usual.

The loop ends: the retrain's completion scores the month again, which is a cache hit (no event) unless
the gate promoted a new champion, whose month is then monitored once more.
Idempotent, like the zombie automation: found by name, created, updated in place or left alone.
"""

from __future__ import annotations

from typing import Any

from models.core.errors import UserError
from models.core.names import (
    BREACH_EVENT,
    MONTH_CHANGED_EVENT,
    PIPELINE_ON_MONTH_AUTOMATION,
    RETRAIN_AUTOMATION,
    SCORE_AFTER_AUTOMATION,
    SCORE_DEPLOYMENT,
)
from orchestration.commands.run import PIPELINE
from orchestration.deploy.automations import RUN_TAG, ensure_automation

SCORE = SCORE_DEPLOYMENT
SCORE_AFTER = SCORE_AFTER_AUTOMATION
RETRAIN_ON_BREACH = RETRAIN_AUTOMATION
PIPELINE_ON_MONTH = PIPELINE_ON_MONTH_AUTOMATION
PREPROCESSING_FLOWS = ("to-bikes-pipeline", "preprocess")
PERIOD_RESOURCES = "to-bikes.period.*"


def read_deployment_id(name: str) -> Any:
    """The id of a deployment of prefect.yaml (the automations name it by id)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(name).id
        except ObjectNotFound as exc:
            raise UserError(f"deployment {name!r} does not exist on this API; run `make deploy`.") from exc


def build_score_after(score_id: Any) -> Any:
    """Completed pipeline/preprocess deployment run -> a score run with the same year and month."""
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    trigger = EventTrigger(
        match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
        match_related=[
            ResourceSpecification(
                {"prefect.resource.role": "flow", "prefect.resource.name": list(PREPROCESSING_FLOWS)}
            ),
            ResourceSpecification(
                {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{RUN_TAG}"}
            ),
        ],
        expect={"prefect.flow-run.Completed"},
        posture=Posture.Reactive,
        threshold=1,
    )
    parameters = {
        "year": "{{ flow_run.parameters.get('year') }}",
        "month": "{{ flow_run.parameters.get('month') }}",
    }
    return AutomationCore(
        name=SCORE_AFTER,
        description=(
            f"Score and monitor each period a {' or '.join(PREPROCESSING_FLOWS)} run completed; "
            "created by `make deploy`."
        ),
        enabled=True,
        trigger=trigger,
        actions=[RunDeployment(source="selected", deployment_id=score_id, parameters=parameters)],
    )


def build_pipeline_on_event(pipeline_id: Any, name: str, event: str, description: str) -> Any:
    """Each ``event`` on a period resource -> a pipeline run for the event's year and month."""
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    trigger = EventTrigger(
        match=ResourceSpecification({"prefect.resource.id": PERIOD_RESOURCES}),
        expect={event},
        posture=Posture.Reactive,
        threshold=1,
    )
    parameters = {"year": "{{ event.payload.year }}", "month": "{{ event.payload.month }}"}
    return AutomationCore(
        name=name,
        description=description,
        enabled=True,
        trigger=trigger,
        actions=[RunDeployment(source="selected", deployment_id=pipeline_id, parameters=parameters)],
    )


def build_retrain_on_breach(pipeline_id: Any) -> Any:
    """A breach event -> a pipeline run for the breached year and month (the gate decides)."""
    description = f"Retrain (pipeline for the month) on each {BREACH_EVENT} event; made by `make deploy`."
    return build_pipeline_on_event(pipeline_id, RETRAIN_ON_BREACH, BREACH_EVENT, description)


def build_pipeline_on_month(pipeline_id: Any) -> Any:
    """A month-changed event (the ingest) -> a pipeline run for that year and month."""
    description = f"The pipeline for each month a {MONTH_CHANGED_EVENT} event names; by `make deploy`."
    return build_pipeline_on_event(pipeline_id, PIPELINE_ON_MONTH, MONTH_CHANGED_EVENT, description)


def save_loop_automations() -> list[str]:
    """Ensure the automations against the deployments as they are now; one line each."""
    score_id, pipeline_id = read_deployment_id(SCORE), read_deployment_id(PIPELINE)
    return [
        ensure_automation(build_pipeline_on_month(pipeline_id))
        + f" (runs {PIPELINE} on {MONTH_CHANGED_EVENT})",
        ensure_automation(build_score_after(score_id))
        + f" (runs {SCORE} after {', '.join(PREPROCESSING_FLOWS)})",
        ensure_automation(build_retrain_on_breach(pipeline_id)) + f" (runs {PIPELINE} on {BREACH_EVENT})",
    ]
