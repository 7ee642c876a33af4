"""The loop's automations: what triggers them and which deployment they run with which parameters."""

from __future__ import annotations

import uuid

import pytest
from prefect.events.schemas.events import Resource

from models.core.names import BREACH_EVENT, MONTH_CHANGED_EVENT, PERIOD_RESOURCE
from orchestration.deploy.automations import RUN_TAG, comparable_spec
from orchestration.deploy.loop_automations import (
    PIPELINE_ON_MONTH,
    RETRAIN_ON_BREACH,
    SCORE_AFTER,
    build_pipeline_on_month,
    build_retrain_on_breach,
    build_score_after,
)


@pytest.mark.unit
def test_score_follows_completed_pipeline_and_preprocess_deployment_runs_with_their_period():
    score_id = uuid.uuid4()
    automation = build_score_after(score_id)
    assert automation.name == SCORE_AFTER
    trigger = automation.trigger
    assert trigger.expect == {"prefect.flow-run.Completed"}
    related = [spec.root for spec in trigger.match_related]
    assert {
        "prefect.resource.role": "flow",
        "prefect.resource.name": ["to-bikes-pipeline", "preprocess"],
    } in related
    assert {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{RUN_TAG}"} in related
    (action,) = automation.actions
    assert action.deployment_id == score_id
    assert action.parameters == {
        "year": "{{ flow_run.parameters.get('year') }}",
        "month": "{{ flow_run.parameters.get('month') }}",
    }


@pytest.mark.unit
def test_a_breach_event_of_any_period_runs_the_pipeline_for_that_month():
    pipeline_id = uuid.uuid4()
    automation = build_retrain_on_breach(pipeline_id)
    assert automation.name == RETRAIN_ON_BREACH
    assert automation.trigger.expect == {BREACH_EVENT}
    period = Resource({"prefect.resource.id": PERIOD_RESOURCE.format(period="2026-01")})
    assert automation.trigger.match.matches(period)
    assert not automation.trigger.match.matches(Resource({"prefect.resource.id": "prefect.flow-run.1"}))
    (action,) = automation.actions
    assert action.deployment_id == pipeline_id
    assert action.parameters == {"year": "{{ event.payload.year }}", "month": "{{ event.payload.month }}"}
    assert comparable_spec(automation) == comparable_spec(build_retrain_on_breach(pipeline_id))


@pytest.mark.unit
def test_a_month_changed_event_runs_the_pipeline_for_that_month_and_a_breach_does_not():
    pipeline_id = uuid.uuid4()
    automation = build_pipeline_on_month(pipeline_id)
    assert (automation.name, automation.trigger.expect) == (PIPELINE_ON_MONTH, {MONTH_CHANGED_EVENT})
    assert automation.trigger.match.matches(Resource({"prefect.resource.id": "to-bikes.period.2025-12"}))
    assert not automation.trigger.match.matches(Resource({"prefect.resource.id": "to-bikes.file.raw/x.csv"}))
    (action,) = automation.actions
    assert action.deployment_id == pipeline_id
    assert action.parameters == {"year": "{{ event.payload.year }}", "month": "{{ event.payload.month }}"}
    assert BREACH_EVENT not in automation.trigger.expect
