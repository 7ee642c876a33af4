"""One timed run of a deployment, from agent/.venv: ``python -m bench.flow_runs DEPLOYMENT PARAMS_JSON``.

Creates the flow run over the API, polls it to a final state and prints one JSON line: seconds from
the trigger to Running (the worker's pick-up latency) and to the final state, the final state's
name, and each task run's name, state and duration (to see a cached task next to a computed one).
Runs in agent/.venv (Prefect); the bench itself stays in the model environment.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

POLL_S = 0.25
TIMEOUT_S = 900.0


def task_runs(client: Any, flow_run_id: Any) -> list[dict[str, Any]]:
    """Name, final state and seconds of every task run of the flow run (subflows included)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    runs = list(client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]})))
    children = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
    )
    for child in children:
        runs += client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [child.id]}))
    return [
        {
            "name": run.name,
            "state": run.state_name,
            "seconds": (run.end_time - run.created).total_seconds() if run.end_time and run.created else None,
        }
        for run in runs
    ]


def run_once(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Trigger, watch for Running and for the final state, collect the task runs."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(name)
        triggered = time.monotonic()
        flow_run = client.create_flow_run_from_deployment(deployment.id, parameters=params)
        running_after = pending_after = None
        deadline = triggered + TIMEOUT_S
        while time.monotonic() < deadline:
            state = client.read_flow_run(flow_run.id).state
            if pending_after is None and state is not None and not state.is_scheduled():
                pending_after = time.monotonic() - triggered
            if running_after is None and state is not None and (state.is_running() or state.is_final()):
                running_after = time.monotonic() - triggered
            if state is not None and state.is_final():
                break
            time.sleep(POLL_S)
        seconds = time.monotonic() - triggered
        return {
            "deployment": name,
            "flow_run": str(flow_run.id),
            "state": state.name if state is not None else "unknown",
            "seconds": seconds,
            "trigger_to_pending_s": pending_after,
            "trigger_to_running_s": running_after,
            "tasks": task_runs(client, flow_run.id),
        }


def main(argv: list[str]) -> int:
    """Print the run's figures as one JSON line."""
    print(json.dumps(run_once(argv[0], json.loads(argv[1])), default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
