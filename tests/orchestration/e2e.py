"""Helpers of the end-to-end tests (not a test module: test modules import this, never each other).

A deployed project on the session's ``local_stack``: a small synthetic sample under ``raw/``, the
same commands as the Makefile (``python -m orchestration blocks``, ``deploy``, ``worker start|stop``,
``run``), and readers of the Prefect API.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from models.core.settings import PROJECT_ROOT
from models.sample.generate import generate_sample
from models.training.lineage import run_git
from stack.embedded import StackEnv

BUCKET = "to-bikes-e2e"
PIPELINE = "to-bikes-pipeline/on-demand"
MODEL = "to-bikes-member"
COMMAND_TIMEOUT_S = 900
WORKER_LOG_LINES = 300  # a stuck backfill: its flow run's and two Dask workers' stacks
STACKS_WRITE_S = 2.0  # the signalled processes write their stacks within this
WAIT_S = 120  # events reach the server's store within seconds of their emission
_PRIVATE = ("AWS_", "MLFLOW_", "PREFECT_", "TO_BIKES_")
_RUN_URL = re.compile(r"/runs/flow-run/([0-9a-f-]{36})")


@dataclass
class Deployed:
    """The environment of the deployed project and how to reach its servers."""

    env: dict[str, str]
    stack: StackEnv
    sha: str


@dataclass
class PipelineRun:
    """One triggered run: its id and the trigger command's output."""

    flow_run_id: str
    output: str


def run_module(
    module: str, env: dict[str, str], *args: str, check: bool = True, timeout: int = COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` in agent/.venv from the project root; with ``check``, exit 0 or fail."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        output = f"{done.stdout}\n{done.stderr}{worker_stacks_and_log(env)}"
        raise AssertionError(f"{module} {args} exited {done.returncode}:\n{output}")
    return done


def worker_stacks_and_log(env: dict[str, str]) -> str:
    """For a failed command's message: ``worker stacks`` (the flow runs still going write where they wait),
    then the end of the worker's log."""
    if not env.get("TO_BIKES_STATE_DIR"):
        return ""
    stacks = run_module("orchestration", env, "worker", "stacks", check=False, timeout=60)
    time.sleep(STACKS_WRITE_S)
    return f"\n--- worker stacks: {(stacks.stdout + stacks.stderr).strip()}{worker_log_tail(env)}"


def worker_log_tail(env: dict[str, str], lines: int = WORKER_LOG_LINES) -> str:
    """The end of the background worker's log (its flow runs' output: Prefect's, Dask's), for a failure's
    message: a run that failed or hung on a CI machine leaves nothing else to read once the stack is gone."""
    from stack.processes import tail_log

    tail = tail_log(Path(env["TO_BIKES_STATE_DIR"]), "worker", lines)
    return f"\n--- the last {lines} line(s) of the worker log ---\n{tail}" if tail else ""


def s3_client(stack: StackEnv) -> Any:
    return stack.s3_client()


def unpack_bundle(body: bytes) -> dict[str, bytes]:
    """The files of a ``bundle.tar.gz`` (``orchestration.deploy.bundle``): relative path -> bytes."""
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def upload_sample(
    stack: StackEnv,
    folder: Path,
    bucket: str = BUCKET,
    seed: int = 7,
    years: tuple[str, ...] = ("2024", "2025"),
    rows: int = 3000,
) -> None:
    """A generated sample's ``years`` under ``raw/<year>/`` of ``bucket`` (created here unless another
    module on the same session stack made it already: ``deployed`` is shared by several e2e modules)."""
    generate_sample(folder, seed=seed, rows=rows)
    client = s3_client(stack)
    if bucket not in {item["Name"] for item in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)
    for year in years:
        for path in sorted((folder / year).iterdir()):
            client.upload_file(str(path), bucket, f"raw/{year}/{path.name}")


def save_blocks(env: dict[str, str]) -> None:
    """``make blocks`` (the block types registered, then the documents saved) with this environment."""
    prefect = str(Path(sys.executable).parent / "prefect")
    registered = subprocess.run(
        [prefect, "--no-prompt", "block", "register", "-f", "orchestration/flows/config_block.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert registered.returncode == 0, registered.stdout + registered.stderr
    run_module("orchestration", env, "blocks")


def deploy_project(env: dict[str, str]) -> None:
    """``make blocks deploy`` with this environment: blocks saved, code bundle and deployments pushed.

    ``--allow-dirty``: a clean checkout (CI) deploys ``flows/<sha>/``, a work tree with changes
    ``flows/<sha>-dirty-<time>/``.
    """
    save_blocks(env)
    run_module("orchestration", env, "deploy", "--allow-dirty")
    pause_schedules(env)


def pause_schedules(env: dict[str, str]) -> None:
    """Pause each deployment that has a schedule (``ingest/scheduled-daily``, 06:00 Toronto time): the tests
    start their own runs, and a run the schedule makes would run in whichever test's worker polls when it
    comes due (a CI at 11:06 UTC read the ingest test's portal twice at once and failed). Pausing deletes
    the runs it already made; the deployment still runs when a run is created from it."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(env["PREFECT_API_URL"], auth_string=env.get("PREFECT_API_AUTH_STRING")) as client:
        for deployment in client.read_deployments():
            if deployment.schedules:
                client.pause_deployment(deployment.id)


def scheduled_by_a_schedule(client: Any) -> list[Any]:
    """Flow runs a deployment's schedule made and no worker has taken yet."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    scheduled = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
    )
    return [run for run in client.read_flow_runs(flow_run_filter=scheduled) if run.auto_scheduled]


@contextlib.contextmanager
def worker_running(env: dict[str, str], stack: StackEnv) -> Iterator[Deployed]:
    """``make demo``'s background worker for ``env``, stopped on the way out whatever happened."""
    try:
        run_module("orchestration", env, "worker", "start")
        yield Deployed(env=env, stack=stack, sha=run_git(["rev-parse", "HEAD"]) or "")
    finally:
        run_module("orchestration", env, "worker", "stop", check=False, timeout=120)


def ensure_worker(env: dict[str, str]) -> None:
    """``stack.worker start``: a live worker is left alone, a dead one (a test SIGKILLed it) replaced."""
    run_module("orchestration", env, "worker", "start")


def flow_run_id_in(output: str) -> str:
    """The flow run id of the run URL a command printed."""
    match = _RUN_URL.search(output)
    assert match, output
    return match[1]


def automation_flow_runs(api_url: str, automation: str, since: datetime | None = None) -> list[str]:
    """Ids of the flow runs the automation named ``automation`` created, from its own
    ``prefect.automation.action.executed`` events (the created run is their ``flow-run`` resource)."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api_url) as client:
        (found,) = client.read_automations_by_name(automation)
    executed = ["prefect.automation.action.executed"]
    events = read_events(api_url, executed, since=since, resources=[f"prefect.automation.{found.id}"])
    related = (resource for event in events for resource in event.related)
    return [r.id.removeprefix("prefect.flow-run.") for r in related if r.role == "flow-run"]


def trigger_pipeline(deployed: Deployed) -> PipelineRun:
    """``make run``'s command (latest year, one search trial); it must exit 0 (Completed)."""
    done = run_module("orchestration", deployed.env, "run", "--param", "max_evals=1", "--timeout", "600")
    match = _RUN_URL.search(done.stdout)
    assert match, done.stdout
    assert "Completed" in done.stdout
    return PipelineRun(flow_run_id=match[1], output=done.stdout)


def prefect_client(deployed: Deployed) -> Any:
    """A sync client of the test stack's API (this process may have imported Prefect already)."""
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(deployed.env["PREFECT_API_URL"])


def run_and_subflow_ids(client: Any, flow_run_id: str) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    children = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
    )
    return [flow_run_id, *(child.id for child in children)]


def read_messages(client: Any, flow_run_ids: list[Any]) -> list[str]:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids)))
    return [entry.message for entry in logs]


def clean_env(stack: StackEnv, **extra: str) -> dict[str, str]:
    """The stack's client environment on top of the caller's, without its project variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE) and k != "PYTHONPATH"}
    return {**base, **stack, "PREFECT_WORKER_QUERY_SECONDS": "1", **extra}


def trigger(deployed: Deployed, *args: str) -> tuple[int, str, str | None]:
    """``python -m orchestration run ARGS``: (exit code, output, flow run id)."""
    command = [sys.executable, "-m", "orchestration", "run", "--timeout", "600", *args]
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=deployed.env, capture_output=True, text=True, timeout=900, check=False
    )
    match = _RUN_URL.search(done.stdout)
    return done.returncode, done.stdout + done.stderr, match[1] if match else None


def read_events(
    api_url: str,
    names: list[str],
    related: list[str] | None = None,
    since: datetime | None = None,
    resources: list[str] | None = None,
) -> list[Any]:
    """The server's events whose name starts with one of ``names`` (about one of ``resources`` and
    relating to one of ``related``: resource ids such as ``prefect.flow-run.<id>``), oldest first."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventRelatedFilter,
        EventResourceFilter,
    )

    query = EventFilter(
        event=EventNameFilter(prefix=names),
        occurred=EventOccurredFilter(since=since or datetime.now(UTC) - timedelta(days=1)),
        related=EventRelatedFilter(id=related) if related else None,
        resource=EventResourceFilter(id=resources) if resources else None,
    )
    with SyncPrefectClient(api_url) as client:
        page = client.read_events(filter=query, limit=50)  # the most the API serves per page
        found = list(page.events)
        while page.next_page:
            page = client.read_events_page(page.next_page)
            found += page.events
    return sorted(found, key=lambda event: event.occurred)


def wait_for(what: str, check: Callable[[], Any], deadline_s: float = WAIT_S, poll_s: float = 1.0) -> Any:
    """Poll ``check()`` until it returns something truthy; fails naming ``what`` after ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {deadline_s:.0f} s (last: {found!r})")
        time.sleep(poll_s)


def pipeline_runs(client: Any, year: int, month: int) -> list[Any]:
    """Flow runs of the pipeline deployment whose parameters are this year and month (flow and deployment
    name: other flows have an ``on-demand`` deployment too)."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
    )

    flow, _, deployment = PIPELINE.partition("/")
    runs = client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[flow])),
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
        flow_run_filter=FlowRunFilter(),
    )
    return [r for r in runs if r.parameters.get("year") == year and r.parameters.get("month") == month]
