"""Waiting for a deployment's flow run: who polls the pool, what state the run is in, and API outages.

``make run`` creates a run and then waits for it. While it waits it prints one line whenever what it
waits for changes: no worker polling the pool (a worker whose last heartbeat is older than three of
its heartbeat intervals is not counted, whatever status Prefect still shows), or the run's state
(Scheduled, Pending, Running); the staleness rule is ``stack.worker_status.is_worker_fresh``, the
one ``make status`` shows. A Prefect API that stops answering is retried for up to ``API_OUTAGE_S``
seconds (one line saying so); a longer outage ends in one sentence naming the server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from models.core.errors import UserError
from orchestration.flows.api_loss import API_OUTAGE_S, is_api_outage
from stack.worker_status import is_worker_fresh

log = logging.getLogger(__name__)

T = TypeVar("T")
POLL_S = 1.0
API_RETRY_S = 3.0
WAITING_STATES = ("SCHEDULED", "PENDING", "LATE", "AWAITINGRETRY", "PAUSED")


@dataclass
class ApiCaller:
    """Calls the Prefect API, waiting out an outage of up to ``outage_s`` seconds.

    ``say`` prints the one line that tells the user the API is away and, later, that it is back.
    """

    api_url: str
    say: Callable[[str], None]
    outage_s: float = API_OUTAGE_S
    retry_s: float = API_RETRY_S
    down_since: float | None = field(default=None, init=False)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)``, retried while the API is down (bounded by ``outage_s``)."""
        while True:
            try:
                value = function(*args, **kwargs)
            except Exception as exc:
                if not is_api_outage(exc):
                    raise
                self.note_outage(exc)
                time.sleep(self.retry_s)
                continue
            if self.down_since is not None:
                self.say(f"the Prefect API at {self.api_url} answers again; still waiting")
                self.down_since = None
            return value

    def note_outage(self, exc: BaseException) -> None:
        """Say once that the API is away; give up in one sentence after ``outage_s`` seconds."""
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            self.say(
                f"the Prefect API at {self.api_url} does not answer ({type(exc).__name__}); "
                f"retrying for up to {self.outage_s / 60:.1f} minutes"
            )
            return
        if now - self.down_since > self.outage_s:
            raise UserError(
                f"The Prefect API at {self.api_url} did not answer for {now - self.down_since:.0f} s; "
                "start it with `make up` (or check PREFECT_API_URL); the run may still be going."
            ) from exc


def read_fresh_workers(client: Any, pool: str) -> list[Any]:
    """The pool's workers that poll it now; none when the pool does not exist yet."""
    from prefect.exceptions import ObjectNotFound

    try:
        workers = client.read_workers_for_work_pool(pool)
    except ObjectNotFound:
        return []
    return [w for w in workers if is_worker_fresh(w)]


def describe_no_worker(pool: str) -> str:
    """What the run waits for when nobody polls its pool, and how to fix it."""
    return (
        f"waiting: no worker polls work pool {pool!r} (start one: `make agent` in another terminal, "
        "or `make up` after `make demo`)"
    )


def describe_wait(state: Any, fresh_workers: int, pool: str) -> str:
    """The one line saying what the run waits for now."""
    name = state.name if state is not None else "Scheduled"
    kind = str(getattr(state, "type", "SCHEDULED")).rpartition(".")[2].upper()
    if kind in WAITING_STATES and fresh_workers == 0:
        return describe_no_worker(pool)
    return f"waiting: the run is {name}"


def wait_final(client: Any, caller: ApiCaller, flow_run_id: Any, pool: str, timeout_s: float) -> Any:
    """Poll the run until it is final or ``timeout_s`` passed; print a line when the wait changes."""
    deadline = time.monotonic() + timeout_s
    said = ""
    while True:
        state = caller.call(client.read_flow_run, flow_run_id).state
        if state is not None and state.is_final():
            return state
        waiting = str(getattr(state, "type", "")).rpartition(".")[2].upper() in WAITING_STATES
        fresh = len(caller.call(read_fresh_workers, client, pool)) if waiting else 1
        line = describe_wait(state, fresh, pool)
        if line != said:
            caller.say(line)
            said = line
        if time.monotonic() > deadline:
            return state
        time.sleep(POLL_S)
