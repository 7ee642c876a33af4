"""A Prefect server outage in the middle of a pipeline run, on the real local stack (issue 22).

Up to 3 minutes is survived (Prefect's client retries, ``OUTAGE_ENV``); a longer one ends the flow-run
process in one line naming the server and what it left in MLflow, and the next run of the same work
records on the lost run the version it registered. The pipeline runs as a ``python -c`` process of its
own (a flow run without a deployment, as on a worker); the Prefect server is stopped by the pid the
stack recorded in its state folder, never by name, and started again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from orchestration.flows.api_loss import EXIT_API_LOST, LOST_RUN_KEY
from stack.control import start_stack
from stack.embedded import StackEnv
from stack.processes import read_pid, stop_record
from tests.orchestration.fault_runs import (
    NAME,
    fault_blocks,
    finish,
    mlflow,
    pipeline,
    start_pipeline_process,
    task_states,
    versions,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OUTAGE_S = 180  # the "up to 3 minutes"; Prefect's default client retries span about 62 s


@pytest.fixture(scope="module")
def outage_stack(local_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    with fault_blocks(local_stack, tmp_path_factory.mktemp("outages")) as stack:
        yield stack


def wait_for_training_run(stack: StackEnv, seed: int, process: Any) -> str:
    """Until the pipeline process has an MLflow run logging (the middle of the train task); its id."""
    client = mlflow(stack)
    while process.poll() is None:
        experiment = client.get_experiment_by_name(NAME)  # created by the run when it comes first
        ids = [experiment.experiment_id] if experiment else []
        runs = client.search_runs(ids, filter_string=f"params.seed = '{seed}'") if ids else []
        if runs:
            return runs[0].info.run_id
        time.sleep(0.5)
    pytest.fail(f"the pipeline ended before training: {process.communicate()[0][-3000:]}")


def stop_prefect(stack: StackEnv) -> None:
    record = read_pid(stack.state_dir, "prefect")
    assert record is not None and stop_record("prefect", record)


def start_prefect(stack: StackEnv) -> None:
    start_stack(stack.settings(), ("prefect",), die_with_parent=True)


def read_artifacts(stack: StackEnv, flow_run_id: Any) -> list[Any]:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with SyncPrefectClient(stack["PREFECT_API_URL"]) as client:
        runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        return list(client.read_artifacts(flow_run_filter=runs))


def test_a_version_registered_by_a_run_that_lost_the_api_is_recorded_on_it_by_the_next_run(
    outage_stack: StackEnv,
) -> None:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.states import Running

    from orchestration.flows.pipeline import pipeline_flow

    _, first = pipeline(year=2025, seed=505)
    with SyncPrefectClient(outage_stack["PREFECT_API_URL"]) as client:
        lost = client.create_flow_run(pipeline_flow, state=Running())  # never heard of again
    # As if the lost run had trained and registered, then lost the API before publishing.
    mlflow(outage_stack).set_tag(first["run_id"], "prefect.flow_run_id", str(lost.id))
    for _ in range(2):  # the second rerun finds the record in place
        state = pipeline_flow(year=2025, max_evals=1, seed=505, return_state=True)
        assert state.is_completed() and state.result()["training_cached"] is True
        # The version the lost run registered, found again: a rerun's message, nothing registered anew.
        assert state.message.startswith(f"version {first['version']} of {NAME}: "), state
        assert state.result()["version"] == first["version"] and state.result()["rerun_record"], state
    records = [a for a in read_artifacts(outage_stack, lost.id) if a.key == LOST_RUN_KEY]
    assert len(records) == 1, records
    assert f"Version {first['version']} of `{NAME}`" in records[0].data


def test_an_outage_past_the_client_retries_ends_in_one_line_and_the_next_run_records_the_version(
    outage_stack: StackEnv,
) -> None:
    before = versions(outage_stack)
    # Two client retries (about 6 s) stand for a worker's seven (about 4 minutes): the same path, sooner.
    process = start_pipeline_process(outage_stack, seed=404, PREFECT_CLIENT_MAX_RETRIES="2")
    run_id = wait_for_training_run(outage_stack, 404, process)
    stop_prefect(outage_stack)
    try:
        code, output, _ = finish(process)  # the server stays away until the flow run gives up
    finally:
        start_prefect(outage_stack)
    api = outage_stack["PREFECT_API_URL"]
    ends = [line for line in output.splitlines() if f"The Prefect API at {api} did not answer" in line]
    assert code == EXIT_API_LOST, output[-5000:]
    assert len(ends) == 1 and "Traceback" not in output, output[-5000:]
    # Whether it lost the API before or after registering depends on when the server went; the line
    # says which, from MLflow.
    lost = {v: r for v, r in versions(outage_stack).items() if v not in before}
    held = f"version {next(iter(lost))} of {NAME}" if lost else "no version"
    assert "after 2 retries" in ends[0] and f"run {run_id} FINISHED with {held}" in ends[0], ends
    lost_flow_run = mlflow(outage_stack).get_run(run_id).data.tags["prefect.flow_run_id"]
    _, rerun = pipeline(year=2025, seed=404)
    added = {v: r for v, r in versions(outage_stack).items() if v not in before}
    assert list(added) == [rerun["version"]], added  # one version either way
    records = [a for a in read_artifacts(outage_stack, lost_flow_run) if a.key == LOST_RUN_KEY]
    if lost:  # its training was cached: the rerun registered it again and said so on the lost run
        assert rerun["training_cached"] is True and len(records) == 1, records
        assert f"Version {rerun['version']} of `{NAME}`" in records[0].data
    else:
        assert not records


def test_a_three_minute_prefect_outage_during_training_is_survived(outage_stack: StackEnv) -> None:
    before = versions(outage_stack)
    process = start_pipeline_process(outage_stack, seed=303)
    wait_for_training_run(outage_stack, 303, process)
    stop_prefect(outage_stack)
    try:
        time.sleep(OUTAGE_S)
    finally:
        start_prefect(outage_stack)
    code, output, flow_run_id = finish(process)
    assert code == 0, output[-20000:]
    assert "Traceback" not in output, output[-5000:]
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(outage_stack["PREFECT_API_URL"]) as client:
        state = client.read_flow_run(flow_run_id).state
    assert state.is_completed(), state
    states = task_states(outage_stack, flow_run_id)
    assert states["train-model"] == "Completed" and states["register-model"] == "Completed", states
    assert read_artifacts(outage_stack, flow_run_id), "no artifact recorded after the outage"
    added = {v: r for v, r in versions(outage_stack).items() if v not in before}
    assert len(added) == 1, added
    assert state.message.startswith(f"registered version {next(iter(added))} of {NAME}: "), state
