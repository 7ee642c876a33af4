"""The notification block and automations (orchestration.deploy.notifications), the months table's
flow-run columns (orchestration.flows.months) and its text (orchestration.commands.months), without a server.

The messages are rendered with the Prefect server's own template function, as its actions service does.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
from prefect.server.utilities.user_templates import render_user_template_sync

from models.core.names import (
    BREACH_EVENT,
    CHAMPION_CHANGED_EVENT,
    FILE_WITHDRAWN_EVENT,
    QUALITY_WARNING_EVENT,
)
from models.core.settings import Settings
from orchestration.commands.months import render_months
from orchestration.deploy.notifications import (
    EVENT_NOTICES,
    build_block,
    build_event_notice,
    build_failed_run_notice,
)
from orchestration.flows.months import read_last_runs
from orchestration.flows.notices import champion_moved

pytestmark = pytest.mark.unit

SECRET_URL = "https://hooks.example.test/services/T000/B000/s3cr3t-token"
RUN_ID = uuid.uuid4()
PAYLOADS = {
    BREACH_EVENT: {
        "period": "2026-01",
        "model_version": "3",
        "reasons": ["ROC AUC fell"],
        "report": "s3://b/r",
    },
    CHAMPION_CHANGED_EVENT: {
        "period": "2025-12",
        "model": "to-bikes-member",
        "version": "2",
        "previous_version": "1",
        "reason": "better on 2025-12",
        "mlflow_url": "http://127.0.0.1:5050/#/models/to-bikes-member/versions/2",
    },
    FILE_WITHDRAWN_EVENT: {"bucket": "b", "key": "raw/2025/Bike share ridership 2025-03.csv"},
    QUALITY_WARNING_EVENT: {
        "period": "2023-02",
        "member_share": 0.06,
        "previous_share": 0.71,
        "previous_period": "2023-01",
        "report": "s3://b/q.json",
        "mlflow_url": None,
    },
}
PERIODS = {BREACH_EVENT: "2026-01", CHAMPION_CHANGED_EVENT: "2025-12", FILE_WITHDRAWN_EVENT: "2025"}


def settings(**values) -> Settings:
    # The MLflow address given, not read from an environment an earlier test may have set.
    fixed = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5050"}
    return Settings(notify_url=SECRET_URL, prefect_ui_url_override="http://ui.test:4200", **fixed, **values)


def flow_run(**parameters) -> SimpleNamespace:
    state = SimpleNamespace(message="Flow run encountered an exception: UserError: No <year>/ folder")
    return SimpleNamespace(
        id=RUN_ID, name="brave-fox", state_name="Failed", state=state, parameters=parameters
    )


def render(action, context) -> tuple[str, str]:
    return render_user_template_sync(action.subject, context), render_user_template_sync(action.body, context)


def test_the_webhook_block_keeps_the_url_secret_and_slack_is_prefects_slack_block() -> None:
    block = build_block(settings())
    assert isinstance(block, CustomWebhookNotificationBlock)
    assert SECRET_URL not in repr(block) and SECRET_URL not in block.url
    assert block._build_request_args("the body", "the subject")["url"] == SECRET_URL
    assert block._build_request_args("b", "s")["json"] == {"subject": "s", "text": "b"}
    assert isinstance(build_block(settings(notify_kind="slack")), SlackWebhook)
    assert not Settings(notify_url="").notify_enabled and settings().notify_enabled


def test_a_failed_run_message_says_what_the_period_and_links_the_run_and_mlflow() -> None:
    automation = build_failed_run_notice(uuid.uuid4(), settings())
    assert automation.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    subject, body = render(
        automation.actions[0], {"flow_run": flow_run(year=2025, month=3), "flow": SimpleNamespace(name="p")}
    )
    print(subject, body, sep="\n")
    assert subject == "to-bikes: flow run brave-fox Failed (2025-03)"
    assert "ended Failed: Flow run encountered an exception" in body and "Period: 2025-03" in body
    assert f"http://ui.test:4200/runs/flow-run/{RUN_ID}" in body
    assert "MLflow: http://127.0.0.1:5050/#/experiments" in body
    _, body = render(automation.actions[0], {"flow_run": flow_run(), "flow": SimpleNamespace(name="p")})
    assert "Period: latest year" in body


@pytest.mark.parametrize("notice", EVENT_NOTICES, ids=[notice[1] for notice in EVENT_NOTICES])
def test_each_event_message_says_what_the_period_and_links_the_run_and_mlflow(notice) -> None:
    automation = build_event_notice(uuid.uuid4(), settings(), notice)
    event = notice[1]
    assert automation.trigger.expect == {event}
    context = {"flow_run": flow_run(), "event": SimpleNamespace(payload=PAYLOADS[event])}
    subject, body = render(automation.actions[0], context)
    print(subject, body, sep="\n")
    assert f"Period: {PERIODS.get(event, PAYLOADS[event].get('period'))}\n" in body
    assert f"Prefect flow run: http://ui.test:4200/runs/flow-run/{RUN_ID}" in body
    mlflow = PAYLOADS[event].get("mlflow_url") or "http://127.0.0.1:5050/#/experiments"
    assert f"MLflow: {mlflow}" in body
    assert SECRET_URL not in subject + body


def test_the_champion_moved_only_when_the_alias_did() -> None:
    assert champion_moved(SimpleNamespace(champion_version="1", previous_champion_version=None))
    assert champion_moved(SimpleNamespace(champion_version="2", previous_champion_version="1"))
    assert not champion_moved(SimpleNamespace(champion_version="1", previous_champion_version="1"))


def test_each_period_gets_its_newest_tagged_run_and_a_run_without_a_year_none() -> None:
    def run(name, state, **parameters):
        return SimpleNamespace(id=uuid.uuid4(), name=name, state_name=state, parameters=parameters)

    runs = [
        run("new", "Failed", year=2025, month=3),
        run("old", "Completed", year=2025, month=3),
        run("y", "Running"),
    ]
    client = SimpleNamespace(read_flow_runs=lambda **kwargs: runs)

    last = read_last_runs(client, "http://ui.test")

    assert last == {
        "2025-03": {
            "last_run": "new",
            "state": "Failed",
            "link": f"http://ui.test/runs/flow-run/{runs[0].id}",
        }
    }


def test_the_months_text_has_one_line_per_period_with_dashes_for_what_is_missing() -> None:
    rows = [
        {"period": "2025-02", "raw_files": 1, "raw_bytes": 10, "verdict": None},
        {
            "period": "2025-03",
            "raw_files": 2,
            "verdict": "ok",
            "state": "Completed",
            "last_run": "x",
            "link": "l",
        },
    ]
    text = render_months(rows)
    print(text)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["period", "files", "bytes"]
    assert lines[1].split()[:4] == ["2025-02", "1", "10", "-"]
    assert "ok" in lines[2] and "Completed x" in lines[2]
    assert render_months([]).startswith("no month yet")
