"""One timed run of a deployment, from agent/.venv: ``python -m bench.flow_runs DEPLOYMENT PARAMS_JSON``.

Starts the flow run and waits for its final state with the commands' own helper
(``orchestration.commands.runs``, as ``make run`` does) and prints one JSON line: seconds from the
trigger to Running (the worker's pick-up latency) and to the final state, the final state's name, and
each task run's name, state and duration (to see a cached task next to a computed one). Both
intervals are read from the server's own timestamps (the run's ``created``, ``start_time`` and
``end_time``), so the wait adds nothing to them; the waited figure is printed too (``seconds_polled``).
Runs in agent/.venv (Prefect); the bench itself stays in the model environment.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

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
            "seconds": task_seconds(run),
        }
        for run in runs
    ]


def task_seconds(run: Any) -> float | None:
    """A task run's seconds from creation to its end; a cached one can end a few ms "before" it was
    created (the two stamps come from different clocks of the run), which reads as 0."""
    if not run.end_time or not run.created:
        return None
    return max(0.0, (run.end_time - run.created).total_seconds())


def server_interval(start: Any, end: Any, polled: float | None) -> float | None:
    """Seconds between two of the server's timestamps of a run; the polled figure if one is missing."""
    if start is None or end is None:
        return polled
    return (end - start).total_seconds()


def run_once(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Start the run and wait for it with the commands' helper; the figures from the server's stamps."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from orchestration.commands.runs import ApiCaller, start_run, wait_final

    caller = ApiCaller(str(PREFECT_API_URL.value()), say=lambda _: None)
    started = start_run(caller, name, params)
    state = wait_final(caller, started.flow_run.id, started.pool, TIMEOUT_S)
    polled = time.monotonic() - started.started
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(started.flow_run.id)
        return {
            "deployment": name,
            "flow_run": str(final.id),
            "state": state.name if state is not None else "unknown",
            "seconds": server_interval(final.created, final.end_time, polled),
            "seconds_polled": polled,
            "trigger_to_running_s": server_interval(final.created, final.start_time, None),
            "tasks": task_runs(client, final.id),
        }


def main(argv: list[str]) -> int:
    """Print the run's figures as one JSON line."""
    print(json.dumps(run_once(argv[0], json.loads(argv[1])), default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
