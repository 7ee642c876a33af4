"""``make status``'s worker line and ``make up``'s worker resume.

The worker's state is the status Prefect reports: the stack's server runs its foreman every few
seconds, so a worker that stops heartbeating is OFFLINE after three intervals (a real server shows
it); the demo worker's pid comes from its pid file; ``make up`` after ``make down`` restarts only a
worker that ``make demo`` (``worker start``) had started.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from models.core.settings import Settings
from stack.control import stop_clients
from stack.embedded import make_stack_env, running_stack
from stack.prefect_api import http_get
from stack.processes import PidRecord, process_start_time, write_pid
from stack.services import SERVICE_NAMES, build_services
from stack.worker_status import (
    START_HINT,
    PoolWorker,
    background_worker_name,
    describe_pool,
    describe_worker,
    ignored_worker_names,
    read_pool_workers,
)


def pool_worker(status: str, seconds_ago: float | None, name: str = "w") -> PoolWorker:
    now = dt.datetime.now(dt.UTC)
    last = None if seconds_ago is None else (now - dt.timedelta(seconds=seconds_ago)).isoformat()
    return PoolWorker(name, status, last, 30)


@pytest.mark.unit
def test_the_pool_is_online_exactly_when_prefect_says_a_worker_is() -> None:
    assert describe_pool([pool_worker("ONLINE", 3)]) == ("online", "1 polling, last heartbeat 3 s ago")
    offline = ("offline", "none polling, last heartbeat 900 s ago")
    assert describe_pool([pool_worker("OFFLINE", 900)]) == offline
    assert describe_pool([pool_worker("OFFLINE", 900), pool_worker("ONLINE", 2)])[0] == "online"
    assert describe_pool([]) == ("offline", "no worker ever polled it")
    assert describe_pool(None) == ("unknown", "the Prefect API does not answer")


@pytest.mark.unit
def test_the_prefect_server_runs_its_foreman_every_5_s_and_a_caller_can_override_it(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(state_dir=tmp_path)
    (prefect,) = build_services(settings, ("prefect",))
    assert prefect.env["PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS"] == "5"
    assert prefect.env["PREFECT_SERVER_SERVICES_FOREMAN_INACTIVITY_HEARTBEAT_MULTIPLE"] == "3"
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS", "2")
    (prefect,) = build_services(settings, ("prefect",))
    assert prefect.env["PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS"] == "2"


def post_json(url: str, body: dict[str, Any]) -> None:
    """POST (a busy server's 503 asked again, as ``stack.prefect_api.http_get`` does); 2xx or fail."""
    status, answer = http_get(url, body=body)
    assert 200 <= status < 300, (url, status, answer)


@pytest.mark.integration
def test_the_stack_server_marks_a_silent_worker_offline_after_three_heartbeats(tmp_path) -> None:
    """The foreman settings of stack/services.py reach the server: a 1 s worker is OFFLINE within seconds."""
    env = make_stack_env(tmp_path, ("prefect",))
    with running_stack(env, ("prefect",)):
        settings = env.settings()
        api = settings.prefect_api_url.rstrip("/")
        post_json(f"{api}/work_pools/", {"name": settings.work_pool, "type": "process"})
        beat = {"name": "silent", "heartbeat_interval_seconds": 1}
        post_json(f"{api}/work_pools/{settings.work_pool}/workers/heartbeat", beat)
        assert describe_pool(read_pool_workers(settings))[0] == "online"
        # The server's own settings say its foreman loops every 5 s (Prefect's default is 15 s).
        with urllib.request.urlopen(f"{api}/admin/settings", timeout=30) as response:
            foreman = json.load(response)["server"]["services"]["foreman"]
        assert (foreman["loop_seconds"], foreman["inactivity_heartbeat_multiple"]) == (5, 3), foreman
        deadline = time.monotonic() + 120  # a deadline on the wait, not a limit on the server's speed
        while describe_pool(read_pool_workers(settings))[0] == "online" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert describe_pool(read_pool_workers(settings))[0] == "offline"  # 3 missed 1 s heartbeats


@pytest.mark.unit
def test_the_worker_line_without_an_api_or_a_pid_file(tmp_path) -> None:
    settings = Settings(state_dir=tmp_path, prefect_port=9)  # port 9 (discard): nothing answers
    line = describe_worker(settings)
    assert line.startswith("worker   unknown    pool to-bikes (the Prefect API does not answer)")
    assert line.endswith(f"background worker stopped: {START_HINT}")


@pytest.mark.unit
def test_a_stopped_background_worker_is_not_counted_while_prefect_still_shows_it_online(tmp_path) -> None:
    """After `make worker-stop` Prefect lists the worker ONLINE for up to three heartbeats; its pid file
    says at once that it is gone, so the count, the state word and `make run` leave it out."""
    settings = Settings(state_dir=tmp_path)
    own = background_worker_name(settings)
    assert own == background_worker_name(Settings(state_dir=tmp_path))  # one row per machine and folder
    assert own != background_worker_name(Settings(state_dir=tmp_path / "other"))
    rows = [pool_worker("ONLINE", 2, own)]
    assert ignored_worker_names(settings) == {own}  # no pid file: stopped
    assert describe_pool(rows, ignored_worker_names(settings)) == (
        "offline",
        "none polling, last heartbeat 2 s ago",
    )
    assert describe_pool([*rows, pool_worker("ONLINE", 1, "agent")], {own}) == (
        "online",
        "1 polling, last heartbeat 1 s ago",
    )
    write_pid(tmp_path, "worker", PidRecord(os.getpid(), process_start_time(os.getpid()) or 0.0, 0))
    assert ignored_worker_names(settings) == set()  # the pid file names a live process: counted
    assert describe_pool(rows, ignored_worker_names(settings))[0] == "online"


@pytest.mark.unit
def test_make_down_stops_the_worker_but_keeps_its_restart_marker(tmp_path) -> None:
    (tmp_path / "worker.wanted").write_text("started\n")
    write_pid(tmp_path, "worker", PidRecord(2**22 + 12345, 1, 0))  # no such process
    stop_clients(tmp_path, SERVICE_NAMES)
    assert not (tmp_path / "run" / "worker.pid").exists()
    assert (tmp_path / "worker.wanted").exists()
