"""End to end: Prefect's notification automations post one message per event to a local HTTP receiver,
and the ``months`` artifact holds the month a pipeline run processed.

On the session's local stack (a bucket and model name of its own), with ``make blocks`` and ``make deploy``
run with ``TO_BIKES_NOTIFY_URL`` set to the receiver (only the notification automations: no loop, so no
run starts another). Through the flows: a pipeline run that fails (one message), a month's pipeline run
that makes the first champion (one message, none for failure or quality) after a normal month's
preprocess run (none), the pipeline's cached rerun (none), and a
preprocess run of a month whose labels flipped (one quality warning). Emitted here, as the flows' own unit
and e2e tests show them emitted: a monitoring breach and a withdrawn file (one message each). A last
event fences the receiver: once its message is in, every earlier one has been acted on.
"""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.core.names import (
    BREACH_EVENT,
    FILE_WITHDRAWN_EVENT,
    MONTHS_ARTIFACT,
    PERIOD_RESOURCE,
    PREPROCESS_DEPLOYMENT,
)
from orchestration.commands.simulate import Receiver, serve
from tests.orchestration.e2e import (
    Deployed,
    clean_env,
    deploy_project,
    prefect_client,
    run_module,
    trigger,
    upload_sample,
    wait_for,
    worker_running,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUCKET = "to-bikes-notify-e2e"
MODEL = "to-bikes-notify-e2e"
PREPROCESS = PREPROCESS_DEPLOYMENT
DEADLINE_S = 600  # a run plus the automation on a loaded machine
SAMPLE_MONTH = "Bike share ridership 2025-12.csv"
RUNS: dict[str, str] = {}  # flow run ids one test leaves for the last one to check


def flip_month(source: Path, target: Path) -> Path:
    """2025-12's raw file as 2026-01 with member and casual swapped (the member share moves a lot)."""
    with source.open(newline="") as src, target.open("w", newline="") as out:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames, extrasaction="ignore")
        writer.writeheader()
        for row in reader:
            if None in row or any(value is None for value in row.values()):
                continue
            row["User_Type"] = {"Member": "Casual", "Casual": "Member"}.get(
                row["User_Type"], row["User_Type"]
            )
            for column in ("Start_Time", "End_Time"):
                row[column] = row[column].replace("2025-12-", "2026-01-")
            writer.writerow(row)
    return target


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """The receiver ``make simulate-year RECEIVER=1`` uses (orchestration/commands/simulate.py)."""
    server = Receiver()
    stop = serve(server)
    try:
        yield server
    finally:
        stop()


@pytest.fixture(scope="module")
def notified(
    module_stack: Any, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    """Blocks (with the notification block), deployments, the notification automations and a worker."""
    env = clean_env(
        module_stack, TO_BIKES_BUCKET=BUCKET, TO_BIKES_MODEL_NAME=MODEL, TO_BIKES_NOTIFY_URL=receiver.url
    )
    folder = tmp_path_factory.mktemp("notify-sample")
    upload_sample(module_stack, folder, bucket=BUCKET, years=("2025",))
    flipped = flip_month(folder / "2025" / SAMPLE_MONTH, folder / "Bike share ridership 2026-01.csv")
    module_stack.s3_client().upload_file(str(flipped), BUCKET, f"raw/2026/{flipped.name}")
    deploy_project(env)
    print(run_module("orchestration", env, "notifications").stdout)
    with worker_running(env, module_stack) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def failed_run(notified: Deployed) -> str:
    code, output, flow_run_id = trigger(notified, "--param", "year=1999")
    assert code == 1 and flow_run_id, output
    return flow_run_id


def emit(api_url: str, event: str, resource: str, payload: dict[str, Any], flow_run_id: str) -> None:
    """An event as the flows emit it: a resource, the emitting flow run related, a payload."""
    from prefect.events import Event
    from prefect.events.clients import PrefectEventsClient

    related = [
        {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}", "prefect.resource.role": "flow-run"}
    ]
    found = Event(event=event, resource={"prefect.resource.id": resource}, related=related, payload=payload)

    async def send() -> None:
        async with PrefectEventsClient(api_url) as client:
            await client.emit(found)

    asyncio.run(send())


def test_a_failed_run_sends_one_message(receiver: Receiver, failed_run: str) -> None:
    (message,) = wait_for("the failed run's message", lambda: receiver.about(failed_run), DEADLINE_S)
    print(message)
    assert "Failed" in message and "Period: 1999" in message
    assert f"/runs/flow-run/{failed_run}" in message and "MLflow: http://" in message


def test_a_months_first_champion_sends_one_message_and_the_months_artifact_has_the_month(
    notified: Deployed, receiver: Receiver
) -> None:
    code, output, RUNS["normal"] = trigger(
        notified, "--deployment", PREPROCESS, "--param", "year=2025", "--param", "month=11"
    )
    assert code == 0, output  # training needs a month before the validation month
    code, output, flow_run_id = trigger(
        notified, "--param", "year=2025", "--param", "month=12", "--param", "max_evals=1"
    )
    assert code == 0, output
    (message,) = wait_for("the champion message", lambda: receiver.about(flow_run_id), DEADLINE_S)
    print(message)
    assert "champion is now version 1" in message and "Period: 2025-12" in message
    assert f"/#/models/{MODEL}/versions/1" in message
    months = read_months_artifact(notified)
    (row,) = [row for row in months if row["period"] == "2025-12"]
    print(row)
    assert row["rows_in"] and row["validated_in"] == "v1" and row["gate"] == "v1 promoted"
    table = run_module("orchestration", notified.env, "months").stdout  # make months
    print(table)
    (line,) = [line for line in table.splitlines() if line.startswith("2025-12 ")]
    assert "v1 promoted" in line and f"/runs/flow-run/{flow_run_id}" in line


def read_months_artifact(deployed: Deployed) -> list[dict[str, Any]]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with prefect_client(deployed) as client:
        (artifact,) = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[MONTHS_ARTIFACT]))
        )
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


def test_a_cached_rerun_of_the_month_sends_none(notified: Deployed, receiver: Receiver) -> None:
    code, output, flow_run_id = trigger(
        notified, "--param", "year=2025", "--param", "month=12", "--param", "max_evals=1"
    )
    assert code == 0, output
    RUNS["rerun"] = flow_run_id  # no message may name it: checked after the fence


def test_a_flipped_month_sends_one_quality_warning(notified: Deployed, receiver: Receiver) -> None:
    code, output, flow_run_id = trigger(
        notified, "--deployment", PREPROCESS, "--param", "year=2026", "--param", "month=1"
    )
    assert code == 0, output
    (message,) = wait_for("the quality warning", lambda: receiver.about(flow_run_id), DEADLINE_S)
    print(message)
    assert "Data-quality warning" in message and "in 2026-01 vs" in message and "in 2025-12" in message
    assert "Period: 2026-01" in message


def test_a_breach_and_a_withdrawn_file_send_one_message_each(
    notified: Deployed, receiver: Receiver, failed_run: str
) -> None:
    api = notified.env["PREFECT_API_URL"]
    breach = {
        "period": "2026-02",
        "model_version": "1",
        "reasons": ["ROC AUC 0.61 vs 0.80"],
        "report": "s3://r",
    }
    emit(api, BREACH_EVENT, PERIOD_RESOURCE.format(period="2026-02"), breach, failed_run)
    key = f"raw/2024/withdrawn-{uuid.uuid4().hex[:6]}.csv"
    emit(api, FILE_WITHDRAWN_EVENT, f"to-bikes.file.{key}", {"bucket": BUCKET, "key": key}, failed_run)
    (message,) = wait_for(
        "the breach message", lambda: receiver.about("monitoring breach in 2026-02"), DEADLINE_S
    )
    assert "ROC AUC 0.61 vs 0.80" in message and f"/runs/flow-run/{failed_run}" in message
    (message,) = wait_for("the withdrawn-file message", lambda: receiver.about(key), DEADLINE_S)
    assert "Period: 2024" in message


def test_after_a_fence_each_event_had_exactly_one_message_and_normal_runs_none(
    notified: Deployed, receiver: Receiver, failed_run: str
) -> None:
    fence = f"raw/2024/fence-{uuid.uuid4().hex[:6]}.csv"
    api = notified.env["PREFECT_API_URL"]
    emit(api, FILE_WITHDRAWN_EVENT, f"to-bikes.file.{fence}", {"bucket": BUCKET, "key": fence}, failed_run)
    wait_for("the fence's message", lambda: receiver.about(fence), DEADLINE_S)
    for message in receiver.about(""):
        print("----\n" + message)
    assert receiver.about(RUNS["rerun"]) == [] and receiver.about(RUNS["normal"]) == []
    assert len(receiver.about(failed_run)) == 4  # its failure, then the breach, the withdrawn file, the fence
    assert len(receiver.about("")) == 6  # + the champion and the quality warning
    assert len(receiver.about("champion is now")) == 1 and len(receiver.about("Data-quality")) == 1
