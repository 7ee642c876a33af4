"""Faults a user meets on the real local stack (issue 22): stale or broken outputs, runs left RUNNING,
and two identical runs at once (the outages are in ``test_outages``).

The flows run in this process or, where two processes or an outage are the point, as separate
``python -c`` processes of their own (a flow run without a deployment, as on a worker). The Prefect
server is stopped by the pid the stack recorded in its state folder, never by name, and started again.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from models.core.settings import PROJECT_ROOT
from stack.embedded import StackEnv
from stack.worker import OUTAGE_ENV
from tests.orchestration.test_pipeline_e2e import upload_sample
from tests.orchestration.test_reliability import clean_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "to-bikes-faults"
NAME = "to-bikes-faults"  # experiment and registered model
DECEMBER = "raw/2025/Bike share ridership 2025-12.csv"


@contextmanager
def fault_blocks(local_stack: StackEnv, folder: Path) -> Iterator[StackEnv]:
    """Blocks for a bucket, experiment and model of the fault modules; 2025 of a sample under raw/."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from orchestration.deploy.blocks import save_all

    upload_sample(local_stack, folder, bucket=BUCKET, seed=17, years=("2025",))
    settings = local_stack.settings().model_copy(
        update={"bucket": BUCKET, "experiment": NAME, "model_name": NAME}
    )
    with temporary_settings(updates={PREFECT_API_URL: local_stack["PREFECT_API_URL"]}):
        save_all(settings)
        yield local_stack


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


def pipeline(**params: Any) -> tuple[str, dict[str, Any]]:
    """One in-process pipeline run (one search trial): its flow run id and result."""
    from orchestration.flows.pipeline import pipeline_flow

    state = pipeline_flow(max_evals=1, **params, return_state=True)
    assert state.is_completed(), state.message
    return str(state.state_details.flow_run_id), state.result()


def parquet_rows(stack: StackEnv, key: str) -> int:
    body = stack.s3_client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return pq.read_metadata(io.BytesIO(body)).num_rows


def mlflow(stack: StackEnv) -> Any:
    from mlflow import MlflowClient

    uri = stack["MLFLOW_TRACKING_URI"]
    return MlflowClient(uri, registry_uri=uri)


def versions(stack: StackEnv) -> dict[str, str]:
    """Version -> run id of the module's registered model."""
    return {v.version: v.run_id for v in mlflow(stack).search_model_versions(f"name = '{NAME}'")}


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


def start_pipeline_process(stack: StackEnv, seed: int, **extra_env: str) -> subprocess.Popen[str]:
    """A pipeline flow run for 2025 in a process of its own, started as a worker starts one.

    The process creates the flow run, then becomes Prefect's engine entry point (``python -m
    prefect.engine``) with the run's id in ``PREFECT__FLOW_RUN_ID`` and the worker's outage settings:
    what a process worker does, without a deployment (``PREFECT__FLOW_ENTRYPOINT`` names the flow).
    """
    code = (
        "import os, sys\n"
        "from prefect import get_client\n"
        "from orchestration.flows.pipeline import pipeline_flow\n"
        f"parameters = {{'year': 2025, 'max_evals': 1, 'seed': {seed}}}\n"
        "with get_client(sync_client=True) as client:\n"
        "    run = client.create_flow_run(pipeline_flow, parameters=parameters)\n"
        "print('flow run', run.id, flush=True)\n"
        "os.environ['PREFECT__FLOW_RUN_ID'] = str(run.id)\n"
        "os.environ['PREFECT__FLOW_ENTRYPOINT'] = 'orchestration/flows/pipeline.py:pipeline_flow'\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'prefect.engine'])\n"
    )
    env = clean_env(stack, **{**OUTAGE_ENV, **extra_env})
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Exit code, output and flow run id of a pipeline process."""
    output, _ = process.communicate(timeout=1800)
    lines = [line for line in output.splitlines() if line.startswith("flow run ")]
    return process.returncode, output, lines[0].split()[2] if lines else ""


def task_states(stack: StackEnv, flow_run_id: str) -> dict[str, str]:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with SyncPrefectClient(stack["PREFECT_API_URL"]) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    # name-<suffix> -> the state of the task's last run (a cache hit whose output was gone runs again).
    ordered = sorted(runs, key=lambda run: run.start_time or run.expected_start_time or run.created)
    return {run.name.rsplit("-", 1)[0]: run.state.name for run in ordered}


def test_two_identical_runs_at_once_preprocess_once_and_make_one_version(faults_stack: StackEnv) -> None:
    faults_stack.s3_client().delete_object(Bucket=BUCKET, Key="processed/2025/trips.parquet")
    before = versions(faults_stack)
    processes = [start_pipeline_process(faults_stack, seed=202) for _ in range(2)]
    done = [finish(process) for process in processes]
    assert [code for code, _, _ in done] == [0, 0], [output[-3000:] for _, output, _ in done]
    added = {v: r for v, r in versions(faults_stack).items() if v not in before}
    assert len(added) == 1, added
    states = [task_states(faults_stack, flow_run_id) for _, _, flow_run_id in done]
    preprocessed = sorted(run["preprocess-period"] for run in states)
    trained = sorted(run["train-model"] for run in states)
    assert preprocessed == ["Cached", "Completed"], states
    assert trained == ["Cached", "Completed"], states
    _, rerun = pipeline(year=2025, seed=202)
    assert versions(faults_stack).keys() == before.keys() | added.keys()
    assert rerun["version"] in added
