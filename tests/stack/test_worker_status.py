"""``make status``'s worker line and ``make up``'s worker resume, without a server.

A worker Prefect still lists as ONLINE but that has not sent a heartbeat for three intervals (at
least 90 s) is shown as stale; the demo worker's pid comes from its pid file; ``make up`` after
``make down`` restarts only a worker that ``make demo`` (``worker start``) had started.
"""

from __future__ import annotations

import datetime as dt

import pytest

from models.core.settings import Settings
from stack.control import stop_clients
from stack.processes import PidRecord, write_pid
from stack.services import SERVICE_NAMES
from stack.worker_status import PoolWorker, describe_pool, describe_worker


def pool_worker(status: str, seconds_ago: float | None) -> PoolWorker:
    now = dt.datetime.now(dt.UTC)
    last = None if seconds_ago is None else (now - dt.timedelta(seconds=seconds_ago)).isoformat()
    return PoolWorker("w", status, last, 30)


@pytest.mark.unit
def test_the_pool_is_online_only_with_a_recent_heartbeat() -> None:
    assert describe_pool([pool_worker("ONLINE", 3)])[0] == "online"
    state, detail = describe_pool([pool_worker("ONLINE", 300)])
    assert state == "stale" and detail == "Prefect says ONLINE but last heartbeat 300 s ago"
    assert describe_pool([pool_worker("OFFLINE", 900)])[0] == "offline"
    assert describe_pool([]) == ("offline", "no worker ever polled it")
    assert describe_pool(None) == ("unknown", "the Prefect API does not answer")


@pytest.mark.unit
def test_the_worker_line_without_an_api_or_a_pid_file(tmp_path) -> None:
    settings = Settings(state_dir=tmp_path, prefect_port=9)  # port 9 (discard): nothing answers
    line = describe_worker(settings)
    assert line.startswith("worker   unknown    pool to-bikes (the Prefect API does not answer)")
    assert line.endswith("no background worker (`make agent` starts one)")


@pytest.mark.unit
def test_make_down_stops_the_worker_but_keeps_its_restart_marker(tmp_path) -> None:
    (tmp_path / "worker.wanted").write_text("started\n")
    write_pid(tmp_path, "worker", PidRecord(2**22 + 12345, 1, 0))  # no such process
    stop_clients(tmp_path, SERVICE_NAMES)
    assert not (tmp_path / "run" / "worker.pid").exists()
    assert (tmp_path / "worker.wanted").exists()
