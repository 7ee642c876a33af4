"""Start a deployment run and wait for it: the one helper behind ``make run``, backfill, score and the bench.

Prefect does the work: ``run_deployment(..., timeout=0)`` creates the run and ``wait_for_flow_run``
waits for its final state from the server's events. This adds only what Prefect lacks:
- one line whenever what the run waits for changes: no worker polling its pool (only workers Prefect
  reports ONLINE count, and never the project's background worker once its pid file says it is stopped:
  ``stack.worker_status.polling_workers``, the rule ``make status`` shows), or the run's state;
- a Prefect API that stops answering is retried (tenacity) for up to ``API_OUTAGE_S`` seconds with one
  line saying so; a longer outage ends in one sentence naming the server;
- the report: a failure's own reason, or a pipeline run's rows, metrics and gate
  (``orchestration.commands.outcome``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_fixed
from websockets.exceptions import WebSocketException

from models.core.errors import UserError
from orchestration.commands import outcome
from orchestration.flows.api_loss import API_OUTAGE_S, is_api_outage
from stack.worker_status import START_HINT, ignored_worker_names, polling_workers

T = TypeVar("T")
WAIT_SLICE_S = 2  # how long one wait_for_flow_run listens before the wait line is looked at again
API_RETRY_S = 3.0
WAITING_STATES = ("SCHEDULED", "PENDING", "LATE", "AWAITINGRETRY", "PAUSED")


def print_now(line: str) -> None:
    """One line to stdout, flushed (``make run`` is often piped or watched)."""
    print(line, flush=True)


@dataclass
class ApiCaller:
    """Calls the Prefect API, waiting out an outage of up to ``outage_s`` seconds (tenacity).

    ``say`` prints the one line that tells the user the API is away and, later, that it is back.
    """

    api_url: str
    say: Callable[[str], None]
    outage_s: float = API_OUTAGE_S
    retry_s: float = API_RETRY_S
    down: bool = field(default=False, init=False)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)``, retried while the API is down (bounded by ``outage_s``)."""
        retrying = Retrying(
            retry=retry_if_exception(is_api_outage),
            stop=stop_after_delay(self.outage_s),
            wait=wait_fixed(self.retry_s),
            before_sleep=self.note_outage,
            reraise=True,
        )
        try:
            value = retrying(function, *args, **kwargs)
        except Exception as exc:
            if not is_api_outage(exc):
                raise
            raise UserError(
                f"The Prefect API at {self.api_url} did not answer for {self.outage_s:.0f} s; "
                "start it with `make up` (or check PREFECT_API_URL); the run may still be going."
            ) from exc
        if self.down:
            self.say(f"the Prefect API at {self.api_url} answers again; still waiting")
            self.down = False
        return value

    def note_outage(self, retry_state: RetryCallState) -> None:
        """Say once that the API is away."""
        if self.down:
            return
        self.down = True
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        self.say(
            f"the Prefect API at {self.api_url} does not answer ({type(exc).__name__}); "
            f"retrying for up to {self.outage_s / 60:.1f} minutes"
        )


@dataclass
class StartedRun:
    """A flow run created from a deployment: what the wait and the report need."""

    flow_run: Any
    deployment: str
    pool: str
    started: float  # time.monotonic() at creation

    @property
    def url(self) -> str:
        return flow_run_url(self.flow_run.id)


def flow_run_url(flow_run_id: Any) -> str:
    """The run's page in the Prefect UI."""
    from prefect.settings import PREFECT_UI_URL

    return f"{PREFECT_UI_URL.value()}/runs/flow-run/{flow_run_id}"


def read_deployment(client: Any, name: str) -> Any:
    """The deployment, or one sentence saying how to create it."""
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(name)
    except ObjectNotFound as exc:
        raise UserError(f"deployment {name!r} does not exist on this API; run `make deploy`.") from exc


def read_fresh_workers(client: Any, pool: str) -> list[Any]:
    """The pool's workers that poll it now; none when the pool does not exist yet."""
    from prefect.exceptions import ObjectNotFound

    from models.core.settings import load_settings

    try:
        workers = client.read_workers_for_work_pool(pool)
    except ObjectNotFound:
        return []
    return polling_workers(workers, ignored_worker_names(load_settings(), pool))


def describe_no_worker(pool: str) -> str:
    """What the run waits for when nobody polls its pool, and how to fix it."""
    return f"waiting: no worker polls work pool {pool!r}: {START_HINT}"


def describe_wait(state: Any, fresh_workers: int, pool: str) -> str:
    """The one line saying what the run waits for now."""
    name = state.name if state is not None else "Scheduled"
    if is_waiting(state) and fresh_workers == 0:
        return describe_no_worker(pool)
    return f"waiting: the run is {name}"


def is_waiting(state: Any) -> bool:
    """True while the run waits for a worker to pick it up (or for its retry)."""
    return str(getattr(state, "type", "SCHEDULED")).rpartition(".")[2].upper() in WAITING_STATES


def start_run(
    caller: ApiCaller,
    name: str,
    params: dict[str, Any],
    check: Callable[[dict[str, Any], Any], None] | None = None,
) -> StartedRun:
    """Check the parameters, say when nobody polls the pool, then ``run_deployment(timeout=0)``."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    with get_client(sync_client=True) as client:
        deployment = caller.call(read_deployment, client, name)
        if check is not None:
            check(params, deployment)
        pool = deployment.work_pool_name
        if not caller.call(read_fresh_workers, client, pool):
            caller.say(describe_no_worker(pool))
    started = time.monotonic()
    flow_run = caller.call(run_deployment, deployment.id, parameters=params, timeout=0, as_subflow=False)
    return StartedRun(flow_run, name, pool, started)


def wait_final(caller: ApiCaller, flow_run_id: Any, pool: str, timeout_s: float) -> Any:
    """``wait_for_flow_run`` in slices until the run is final or ``timeout_s`` passed; its last state.

    Between slices the wait line (``pool``'s workers, the run's state) is looked at again and printed
    when it changed.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import FlowRunWaitTimeout
    from prefect.flow_runs import wait_for_flow_run

    deadline = time.monotonic() + timeout_s
    said = ""
    while True:
        slice_s = max(1, min(WAIT_SLICE_S, int(deadline - time.monotonic()) or 1))
        try:
            return asyncio.run(wait_for_flow_run(flow_run_id, timeout=slice_s)).state
        except (FlowRunWaitTimeout, OSError, WebSocketException):
            pass  # not final yet, or the API is away: the read below says which (and waits out an outage)
        with get_client(sync_client=True) as client:
            state = caller.call(client.read_flow_run, flow_run_id).state
            if state is not None and state.is_final():
                return state
            fresh = len(caller.call(read_fresh_workers, client, pool)) if is_waiting(state) else 1
        line = describe_wait(state, fresh, pool)
        if line != said:
            caller.say(line)
            said = line
        if time.monotonic() >= deadline:
            return state


def describe_end(caller: ApiCaller, run: StartedRun, state: Any) -> tuple[bool, list[str]]:
    """``(completed, lines)``: what happened, the reason of a failure or the figures of a success."""
    from prefect.client.orchestration import get_client

    seconds = time.monotonic() - run.started
    name = run.flow_run.name
    label = state.name if state is not None else "Scheduled"
    if state is None or not state.is_final():
        return False, [f"{name}: still {label} after {seconds:.0f} s; it goes on: {run.url}"]
    with get_client(sync_client=True) as client:
        name = caller.call(client.read_flow_run, run.flow_run.id).name  # a registering run renamed itself
        head = f"{name}: {label} in {seconds:.1f} s (trigger to final state)"
        if state.is_completed():
            return True, [head, *caller.call(outcome.describe_success, client, run.flow_run.id, state)]
        return False, [f"{head}: {caller.call(outcome.failure_reason, client, run.flow_run.id, state)}"]


def start_and_wait(
    name: str,
    params: dict[str, Any],
    timeout_s: float,
    check: Callable[[dict[str, Any], Any], None] | None = None,
    say: Callable[[str], None] = print_now,
) -> tuple[bool, list[str]]:
    """Start one run of deployment ``name``, say its URL, wait; ``(completed, report lines)``."""
    from prefect.settings import PREFECT_API_URL

    caller = ApiCaller(str(PREFECT_API_URL.value()), say=say)
    run = start_run(caller, name, params, check)
    say(f"{name} {json.dumps(params, sort_keys=True)}: {run.url}")
    state = wait_final(caller, run.flow_run.id, run.pool, timeout_s)
    return describe_end(caller, run, state)
