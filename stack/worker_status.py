"""The worker line of ``make status``: the demo worker's pid, its pool, and whether the pool is polled.

A worker polls its pool when Prefect says it is ONLINE: the server's foreman service marks a worker
OFFLINE once it missed three heartbeats, and the stack's server runs it every few seconds
(``stack.services.FOREMAN_SETTINGS``), so a worker that died shows OFFLINE within seconds of that.
``orchestration.commands.runs`` reads the same status while ``make run`` waits. This module talks
HTTP to the Prefect API (it runs without Prefect) and never fails: an unreachable API is shown as such.

The project's background worker (``make worker-start``) registers under one name per machine, state
folder and pool (``background_worker_name``), so a restart updates its row instead of adding one. When
its pid file says it is stopped, its row is not counted even while Prefect still shows it ONLINE (up to
three heartbeats after a stop): ``make status`` and ``make run`` know at once that it is gone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
from dataclasses import dataclass
from typing import Any

from models.core.settings import Settings
from stack.prefect_api import http_get, prefect_headers
from stack.processes import read_pid
from stack.services import state_dir_of

WORKER_NAME = "worker"
START_HINT = "`make worker-start` starts one in the background, `make agent` one in the foreground"


def heartbeat_age_s(worker: Any, now: dt.datetime | None = None) -> float | None:
    """Seconds since the worker's last heartbeat (None if it never sent one)."""
    last = getattr(worker, "last_heartbeat_time", None)
    if last is None:
        return None
    if isinstance(last, str):
        last = dt.datetime.fromisoformat(last.replace("Z", "+00:00"))
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    return ((now or dt.datetime.now(dt.UTC)) - last).total_seconds()


def is_worker_fresh(worker: Any, now: dt.datetime | None = None) -> bool:
    """True when Prefect reports the worker ONLINE (its foreman's rule; ``now`` is not used)."""
    return str(getattr(worker.status, "value", worker.status)).upper() == "ONLINE"


@dataclass(frozen=True)
class PoolWorker:
    """One worker as the REST API lists it (the fields the freshness rule reads)."""

    name: str
    status: str
    last_heartbeat_time: str | None
    heartbeat_interval_seconds: int | None


def read_pool_workers(settings: Settings, pool: str | None = None) -> list[PoolWorker] | None:
    """The pool's workers (POST /work_pools/<pool>/workers/filter); None when the API does not answer."""
    url = f"{settings.prefect_api_url.rstrip('/')}/work_pools/{pool or settings.work_pool}/workers/filter"
    status, found = http_get(url, prefect_headers(settings), {})
    if status == 404:
        return []  # the pool does not exist yet
    if status != 200 or not isinstance(found, list):
        return None
    return [
        PoolWorker(
            str(w.get("name")),
            str(w.get("status")),
            w.get("last_heartbeat_time"),
            w.get("heartbeat_interval_seconds"),
        )
        for w in found
    ]


def background_worker_name(settings: Settings, pool: str | None = None) -> str:
    """The name the project's background worker polls ``pool`` under: one per machine and state folder."""
    pool = pool or settings.work_pool
    where = f"{socket.gethostname()}:{state_dir_of(settings)}"
    return f"to-bikes-background-{pool}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


def background_worker_running(settings: Settings) -> bool:
    """True while the pid file names a live background worker."""
    record = read_pid(state_dir_of(settings), WORKER_NAME)
    return record is not None and record.leader_alive()


def ignored_worker_names(settings: Settings, pool: str | None = None) -> set[str]:
    """Rows not to count: the background worker's while its pid file says it is stopped."""
    return set() if background_worker_running(settings) else {background_worker_name(settings, pool)}


def polling_workers(workers: list[Any], ignored: set[str] = frozenset()) -> list[Any]:
    """The workers Prefect reports ONLINE, without the rows of workers known to be stopped."""
    return [w for w in workers if is_worker_fresh(w) and getattr(w, "name", None) not in ignored]


def describe_pool(workers: list[PoolWorker] | None, ignored: set[str] = frozenset()) -> tuple[str, str]:
    """``(state, detail)``: online / offline / unknown, how many poll, and the freshest heartbeat's age."""
    if workers is None:
        return "unknown", "the Prefect API does not answer"
    polling = polling_workers(workers, ignored)
    ages = [a for a in (heartbeat_age_s(w) for w in polling or workers) if a is not None]
    last = f"last heartbeat {min(ages):.0f} s ago" if ages else "no heartbeat"
    if polling:
        return "online", f"{len(polling)} polling, {last}"
    return "offline", f"none polling, {last}" if workers else "no worker ever polled it"


def describe_worker(settings: Settings) -> str:
    """One ``make status`` line: the pool's one state word, how many poll, the background worker's pid."""
    record = read_pid(state_dir_of(settings), WORKER_NAME)
    alive = record is not None and record.leader_alive()
    state, detail = describe_pool(read_pool_workers(settings), ignored_worker_names(settings))
    if alive and record:
        own = f"background worker pid {record.pid}"
    elif state == "online":
        own = "background worker stopped; another worker polls"
    else:
        own = f"background worker stopped: {START_HINT}"
    return f"{WORKER_NAME:8} {state:10} pool {settings.work_pool} ({detail})  {own}"
