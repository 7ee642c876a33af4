"""Helpers of the fault tests (``test_faults``, ``test_outages``): blocks of their own, pipeline runs
in this process or in a ``python -c`` process of their own (a flow run without a deployment, as on a
worker), and readers of what the runs left in MLflow and Prefect.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from models.core.settings import PROJECT_ROOT
from stack.embedded import StackEnv
from stack.worker import OUTAGE_ENV
from tests.orchestration.e2e import clean_env, read_events, upload_sample

BUCKET = "to-bikes-faults"
NAME = "to-bikes-faults"  # experiment and registered model


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


def pipeline(**params: Any) -> tuple[str, dict[str, Any]]:
    """One in-process pipeline run (one search trial): its flow run id and result."""
    from orchestration.flows.pipeline import pipeline_flow

    state = pipeline_flow(max_evals=1, **params, return_state=True)
    assert state.is_completed(), state.message
    return str(state.state_details.flow_run_id), state.result()


def mlflow(stack: StackEnv) -> Any:
    from mlflow import MlflowClient

    uri = stack["MLFLOW_TRACKING_URI"]
    return MlflowClient(uri, registry_uri=uri)


def versions(stack: StackEnv) -> dict[str, str]:
    """Version -> run id of the module's registered model."""
    return {v.version: v.run_id for v in mlflow(stack).search_model_versions(f"name = '{NAME}'")}


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


def lock_acquisitions(stack: StackEnv, flow_run_ids: list[str], stage: str) -> dict[str, Any]:
    """Flow run id -> when it acquired its slot of a ``stage`` work lock, from the server's
    ``prefect.concurrency-limit.acquired`` events (``work_locks`` holds a global concurrency limit)."""
    related = [f"prefect.flow-run.{run_id}" for run_id in flow_run_ids]
    events = read_events(stack["PREFECT_API_URL"], ["prefect.concurrency-limit.acquired"], related)
    acquired: dict[str, Any] = dict.fromkeys(flow_run_ids)
    for event in events:
        if (event.resource.name or "").startswith(f"to-bikes-{stage}-"):
            for resource in event.related:
                run_id = resource.id.removeprefix("prefect.flow-run.")
                if run_id in acquired and acquired[run_id] is None:
                    acquired[run_id] = event.occurred
    return acquired


def complete(found: dict[str, Any]) -> dict[str, Any] | None:
    """``found`` once it has a value for every key, else None."""
    return found if all(value is not None for value in found.values()) else None


def task_end(stack: StackEnv, flow_run_id: str, task: str) -> Any:
    """When the last run of ``task`` (its name without the suffix) in the flow run ended."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with SyncPrefectClient(stack["PREFECT_API_URL"]) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return max(run.end_time for run in runs if run.name.rsplit("-", 1)[0] == task and run.end_time)


def flow_run_times(stack: StackEnv, flow_run_id: str) -> tuple[Any, Any]:
    """(start, end) of a flow run, as the server recorded them."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(stack["PREFECT_API_URL"]) as client:
        run = client.read_flow_run(flow_run_id)
    return run.start_time, run.end_time
