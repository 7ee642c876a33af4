"""End to end: ``make simulate-year``'s command, shortened to three months with the third collapsed.

On the session's local stack (a bucket and model of its own), with ``make deploy``'s deployments, its
automations (the loop's and the notifications', posting to a receiver of this test) and a worker. The
command serves the fake portal, publishes 2025-01..03 one at a time and starts one ingest run per
month; no other command is run. Each month is ingested, gets a pipeline run (by the automation) that
Completes and a score run; 2025-03 (member share ~6%) raises the data-quality warning, breaches, and the
breach's automation retrains it; the receiver gets exactly one quality warning and one breach message.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestration.commands.simulate import PIPELINE_FLOW, SCORE_FLOW, Receiver, month_runs, serve
from tests.orchestration.e2e import (
    Deployed,
    automation_flow_runs,
    clean_env,
    deploy_project,
    prefect_client,
    read_messages,
    run_module,
    s3_client,
    wait_for,
    worker_running,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUCKET = "to-bikes-year-e2e"
MODEL = "to-bikes-year-e2e"
MONTHS = 3
COLLAPSED = 3
DEADLINE_S = 300  # a notification after its event on a loaded machine


@pytest.fixture(scope="module")
def simulated(module_stack: Any) -> Iterator[tuple[Deployed, Receiver, str, datetime]]:
    receiver = Receiver()
    stop = serve(receiver)
    client = s3_client(module_stack)
    if BUCKET not in {item["Name"] for item in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    env = clean_env(
        module_stack, TO_BIKES_BUCKET=BUCKET, TO_BIKES_MODEL_NAME=MODEL, TO_BIKES_NOTIFY_URL=receiver.url
    )
    try:
        deploy_project(env)
        for command in ("automations", "loop-automations", "notifications"):  # what `make deploy` runs
            print(run_module("orchestration", env, command).stdout)
        with worker_running(env, module_stack) as deployed:
            since = datetime.now(UTC) - timedelta(seconds=5)
            done = run_module(
                "orchestration",
                env,
                "simulate-year",
                "--months",
                str(MONTHS),
                "--quiet-seconds",
                "20",
                check=False,
                timeout=3600,
            )
            print(done.stdout, done.stderr)
            yield deployed, receiver, done, since
    finally:
        stop()


def ingest_runs(client: Any, since: datetime) -> list[Any]:
    """The ingest flow runs created and started since ``since`` (the simulation's), oldest first."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter

    runs = client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=["ingest"])), flow_run_filter=FlowRunFilter()
    )
    started = (r for r in runs if r.created >= since and r.start_time is not None)  # not the schedule's
    return sorted(started, key=lambda r: r.created)


def test_each_month_is_ingested_processed_and_scored(simulated) -> None:
    deployed, _, done, since = simulated
    output = done.stdout
    client = prefect_client(deployed)
    for month in range(1, MONTHS + 1):
        runs = month_runs(client, month, since)
        pipelines, scores = runs[PIPELINE_FLOW], runs[SCORE_FLOW]
        print(f"2025-{month:02d}:", [(r.name, r.state_name) for r in pipelines + scores])
        assert pipelines and all(r.state.is_completed() for r in pipelines), pipelines
        assert scores and all(r.state.is_completed() for r in scores), scores
    ingests = ingest_runs(client, since)
    assert len(ingests) == MONTHS and all(r.state.is_completed() for r in ingests), ingests
    for month, run in enumerate(ingests, start=1):
        (summary,) = [m for m in read_messages(client, [run.id]) if "months changed:" in m]
        print(summary)
        assert summary.endswith(f"months changed: 2025-{month:02d}"), summary
    assert done.returncode == 0, done.stderr  # every month's runs Completed
    table = output.split("\nperiod ", 1)[1].split("\n\n", 1)[0]  # the months table, after the header
    months = [line.split()[0] for line in table.splitlines() if line.startswith("2025-")]
    assert months == [f"2025-{m:02d}" for m in range(1, MONTHS + 1)], output


def test_the_collapsed_month_warns_breaches_and_retrains_with_one_message_each(simulated) -> None:
    deployed, receiver, _, since = simulated
    client = prefect_client(deployed)
    period = f"2025-{COLLAPSED:02d}"
    retrains = automation_flow_runs(deployed.env["PREFECT_API_URL"], "to-bikes-retrain-on-breach", since)
    pipelines = month_runs(client, COLLAPSED, since)[PIPELINE_FLOW]
    retrained = [r for r in pipelines if str(r.id) in retrains]
    print("retrain runs:", [(r.name, r.state_name) for r in retrained])
    assert len(retrained) == 1 and retrained[0].state.is_completed(), (retrains, pipelines)
    trained = [m for m in read_messages(client, [retrained[0].id]) if "-> version" in m]
    print("retrain:", trained)
    assert trained, "the retrain run trained nothing"
    (warning,) = wait_for("the quality warning", lambda: receiver.about("Data-quality warning"), DEADLINE_S)
    (breach,) = wait_for("the breach message", lambda: receiver.about("monitoring breach in"), DEADLINE_S)
    assert f"Period: {period}" in warning and f"monitoring breach in {period}" in breach
    for message in receiver.about(""):
        print("----\n" + message)
    assert receiver.about("Failed") == [] and receiver.about("Crashed") == []
    assert len(receiver.about("Data-quality warning")) == 1
    assert len(receiver.about("monitoring breach")) == 1
