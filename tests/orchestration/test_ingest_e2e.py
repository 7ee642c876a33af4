"""End to end: the ``ingest/scheduled-daily`` deployment reads a fake CKAN portal, writes raw/ on S3, emits
one ``to-bikes.month.changed`` event per changed month, and the automation ``to-bikes-pipeline-on-month``
starts a pipeline run for that month. A second ingest of the unchanged portal downloads 0 bytes and
starts no pipeline run.

On the session's local stack (a bucket of its own), with ``make deploy``'s deployments and automations
and a worker; the portal is served from this process on 127.0.0.1 (the config block's ``ckan_api_url``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.models.data.portal import Portal, serving, zip_bytes
from tests.orchestration.e2e import (
    Deployed,
    clean_env,
    deploy_project,
    pipeline_runs,
    prefect_client,
    read_messages,
    run_module,
    scheduled_by_a_schedule,
    worker_running,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUCKET = "to-bikes-ingest-e2e"
INGEST = "ingest/scheduled-daily"
POLL_S = 2.0
POLLS = 450  # how long a run or an automation may take on a loaded machine: 15 minutes
MONTH_FILE = "Bike share ridership 2025-03.csv"


@pytest.fixture(scope="module")
def ingest_stack(
    local_stack: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployed, Portal]]:
    """The deployed project (blocks naming the fake portal), its automations, a worker, the portal."""
    from models.sample.generate import generate_sample

    folder = tmp_path_factory.mktemp("ingest-sample")
    generate_sample(folder, seed=5, rows=3000)
    client = local_stack.s3_client()
    if BUCKET not in {item["Name"] for item in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    with serving(Portal(resources=[])) as portal:
        portal.publish(
            2025,
            zip_bytes({MONTH_FILE: Path(folder, "2025", MONTH_FILE).read_bytes()}),
            "2026-04-02T10:00:00",
        )
        env = clean_env(local_stack, TO_BIKES_BUCKET=BUCKET, TO_BIKES_CKAN_API_URL=portal.api)
        deploy_project(env)
        run_module("orchestration", env, "automations")
        run_module("orchestration", env, "loop-automations")
        with worker_running(env, local_stack) as deployed:
            yield deployed, portal


def run_ingest(deployed: Deployed) -> Any:
    """Start the ingest deployment and wait for its final state; the flow run."""
    client = prefect_client(deployed)
    deployment = client.read_deployment_by_name(INGEST)
    run = client.create_flow_run_from_deployment(deployment.id)
    for _ in range(POLLS):
        run = client.read_flow_run(run.id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(POLL_S)
    raise AssertionError(f"ingest run {run.id} not final: {run.state}")


def wait_for_pipeline_run(client: Any, year: int, month: int) -> Any:
    for _ in range(POLLS):
        if runs := pipeline_runs(client, year, month):
            return runs[0]
        time.sleep(POLL_S)
    raise AssertionError(f"no pipeline run for {year}-{month:02d} was started by the automation")


def read_summary_line(client: Any, flow_run_id: Any) -> str:
    """The run's "bytes downloaded" log line; its logs may reach the server just after its final state."""
    for _ in range(POLLS):
        if found := [m for m in read_messages(client, [flow_run_id]) if "bytes downloaded:" in m]:
            (summary,) = found
            return summary
        time.sleep(POLL_S)
    raise AssertionError(f"ingest run {flow_run_id} logged no summary line")


def test_an_ingest_month_event_starts_the_pipeline_for_that_month(ingest_stack) -> None:
    deployed, portal = ingest_stack
    client = prefect_client(deployed)
    assert scheduled_by_a_schedule(client) == []  # only this test's runs read the portal (deploy_project)
    first = run_ingest(deployed)
    assert first.state.is_completed(), first.state
    summary = read_summary_line(client, first.id)
    assert "months changed: 2025-03" in summary and "bytes downloaded: 0;" not in summary, summary
    started = wait_for_pipeline_run(client, 2025, 3)
    print(f"ingest run {first.id} -> pipeline run {started.id} for 2025-03 ({started.state_name})")
    assert started.created > first.start_time
    assert pipeline_runs(client, 2025, 2) == []

    sent = portal.bytes_sent
    again = run_ingest(deployed)
    assert again.state.is_completed(), again.state
    summary = read_summary_line(client, again.id)
    print("unchanged portal:", summary)
    assert "bytes downloaded: 0; 0 file(s) written; months changed: none" in summary, summary
    assert portal.bytes_sent == sent
    time.sleep(30)  # an automation acts within seconds of an event; none may have been emitted
    assert len(pipeline_runs(client, 2025, 3)) == 1
