"""Faults a user meets on the real local stack (issue 22): stale or broken outputs, runs left RUNNING,
and two identical runs at once (the outages are in ``test_outages``).

The flows run in this process or, where two processes or an outage are the point, as separate
``python -c`` processes of their own (a flow run without a deployment, as on a worker). The Prefect
server is stopped by the pid the stack recorded in its state folder, never by name, and started again.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow.parquet as pq
import pytest

from stack.embedded import StackEnv
from tests.orchestration.e2e import wait_for
from tests.orchestration.fault_runs import (
    BUCKET,
    complete,
    fault_blocks,
    finish,
    flow_run_times,
    lock_acquisitions,
    mlflow,
    pipeline,
    start_pipeline_process,
    task_end,
    task_states,
    versions,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DECEMBER = "raw/2025/Bike share ridership 2025-12.csv"


@pytest.fixture(scope="module")
def faults_stack(local_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """``fault_blocks`` for this module."""
    with fault_blocks(local_stack, tmp_path_factory.mktemp("faults")) as stack:
        yield stack


def preprocess(**params: Any) -> dict[str, Any]:
    from orchestration.flows.pipeline import preprocess_flow

    state = preprocess_flow(**params, return_state=True)
    assert state.is_completed(), state.message
    return state.result()


def parquet_rows(stack: StackEnv, key: str) -> int:
    body = stack.s3_client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return pq.read_metadata(io.BytesIO(body)).num_rows


def test_an_output_replaced_by_a_shorter_run_is_rebuilt_when_the_raw_file_comes_back(
    faults_stack: StackEnv,
) -> None:
    client = faults_stack.s3_client()
    full = preprocess(year=2025)
    december = client.get_object(Bucket=BUCKET, Key=DECEMBER)["Body"].read()
    client.delete_object(Bucket=BUCKET, Key=DECEMBER)
    try:
        short = preprocess(year=2025)
    finally:
        client.put_object(Bucket=BUCKET, Key=DECEMBER, Body=december)
    back = preprocess(year=2025)
    assert short["rows_out"] < full["rows_out"]
    # The key is the full run's again, but its output was replaced by the short run: not served.
    assert (back["cached"], back["rows_out"]) == (False, full["rows_out"])
    assert parquet_rows(faults_stack, "processed/2025/trips.parquet") == full["rows_out"]
    assert preprocess(year=2025)["cached"] is True


def test_a_garbage_output_is_rebuilt_instead_of_served(faults_stack: StackEnv) -> None:
    first = preprocess(year=2025, month=5)
    key = "processed/2025-05/trips.parquet"
    faults_stack.s3_client().put_object(Bucket=BUCKET, Key=key, Body=b"not parquet at all")
    rebuilt = preprocess(year=2025, month=5)
    assert (rebuilt["cached"], rebuilt["rows_out"]) == (False, first["rows_out"])
    assert parquet_rows(faults_stack, key) == first["rows_out"]
    assert preprocess(year=2025, month=5)["cached"] is True


def test_a_failed_run_is_not_reused_and_runs_left_running_by_ended_flow_runs_are_swept(
    faults_stack: StackEnv,
) -> None:
    client = mlflow(faults_stack)
    flow_run_id, first = pipeline(year=2025, seed=101)
    experiment_id = client.get_run(first["run_id"]).info.experiment_id
    client.set_terminated(first["run_id"], status="FAILED")  # as if its process had died logging
    stale = client.create_run(experiment_id, tags={"prefect.flow_run_id": flow_run_id}).info.run_id
    by_hand = client.create_run(experiment_id, tags={"prefect.flow_run_id": "none"}).info.run_id
    try:
        _, second = pipeline(year=2025, seed=101)
        swept, kept = client.get_run(stale), client.get_run(by_hand)
    finally:
        client.set_terminated(by_hand, status="KILLED")
    assert second["training_cached"] is False and second["run_id"] != first["run_id"]
    assert swept.info.status == "FAILED"
    assert swept.data.tags["to_bikes.swept"] == f"flow run {flow_run_id} ended Completed"
    assert kept.info.status == "RUNNING"  # no flow run: nobody knows it is over
    _, third = pipeline(year=2025, seed=101)
    assert (third["training_cached"], third["version"]) == (True, second["version"])


@contextmanager
def holding_preprocess_lock(stack: StackEnv) -> Iterator[None]:
    """The pipeline's own preprocess lock for processed/2025 (``flows.work_locks``), held by the test."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from orchestration.flows.work_locks import hold_work_lock, name_work

    output = f"s3://{BUCKET}/processed/2025/trips.parquet"
    api = {PREFECT_API_URL: stack["PREFECT_API_URL"]}
    with temporary_settings(api), hold_work_lock(name_work("preprocess", output)):
        yield


def running_pipeline_runs(stack: StackEnv, seed: int) -> int:
    """How many pipeline flow runs with this seed the server has Running."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    running = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])))
    with SyncPrefectClient(stack["PREFECT_API_URL"]) as client:
        runs = client.read_flow_runs(flow_run_filter=running)
    return sum(1 for run in runs if run.parameters.get("seed") == seed)


def test_two_identical_runs_at_once_preprocess_once_and_make_one_version(faults_stack: StackEnv) -> None:
    faults_stack.s3_client().delete_object(Bucket=BUCKET, Key="processed/2025/trips.parquet")
    before = versions(faults_stack)
    # The test holds the preprocess lock until both flow runs are Running, so that on a loaded machine the
    # second process cannot start only after the first one's preprocessing ended (a later start, no wait).
    with holding_preprocess_lock(faults_stack):
        processes = [start_pipeline_process(faults_stack, seed=202) for _ in range(2)]
        wait_for(
            "both pipeline runs Running", lambda: running_pipeline_runs(faults_stack, seed=202) == 2, 600
        )
    done = [finish(process) for process in processes]
    assert [code for code, _, _ in done] == [0, 0], [output[-3000:] for _, output, _ in done]
    added = {v: r for v, r in versions(faults_stack).items() if v not in before}
    assert len(added) == 1, added
    states = [task_states(faults_stack, flow_run_id) for _, _, flow_run_id in done]
    preprocessed = sorted(run["preprocess-period"] for run in states)
    trained = sorted(run["train-model"] for run in states)
    assert preprocessed == ["Cached", "Completed"], states
    assert trained == ["Cached", "Completed"], states
    # The two runs were in flight together, and the second into the lock waited for the first to let go
    # (not merely started after it ended): the server's flow runs, task runs and concurrency-limit events.
    ids = [flow_run_id for _, _, flow_run_id in done]
    times = [flow_run_times(faults_stack, flow_run_id) for flow_run_id in ids]
    assert max(start for start, _ in times) < min(end for _, end in times), times
    holder = ids[[run["preprocess-period"] for run in states].index("Completed")]
    waiter = next(flow_run_id for flow_run_id in ids if flow_run_id != holder)
    acquired = wait_for(
        "both runs' preprocess-lock acquisitions among the server's events",
        lambda: complete(lock_acquisitions(faults_stack, ids, "preprocess")),
    )
    holder_done = task_end(faults_stack, holder, "preprocess-period")
    assert acquired[holder] < holder_done <= acquired[waiter], (acquired, holder_done)  # one slot
    assert flow_run_times(faults_stack, waiter)[0] < holder_done, (times, holder_done)  # so it waited
    _, rerun = pipeline(year=2025, seed=202)
    assert versions(faults_stack).keys() == before.keys() | added.keys()
    assert rerun["version"] in added
