"""Starting and stopping servers: port conflicts, loopback only, pid files, cleanup on failure."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from models.core.errors import UserError
from stack.control import start_stack, stop_clients, stop_stack
from stack.embedded import make_stack_env, running_stack
from stack.processes import (
    PidRecord,
    is_port_free,
    process_start_time,
    read_pid,
    spawn,
    state_lock,
    stop_record,
    write_pid,
)
from stack.services import Service, base_env, build_services
from stack.sync import AWSCLI_PART_SIZE, digest_file
from tests.stack.stack_helpers import run_stack_cli


@pytest.fixture
def busy_port() -> int:
    """A port with a listener on 127.0.0.1 (held for the test)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.unit
def test_port_in_use_is_one_sentence_naming_the_port(tmp_path: Path, busy_port: int) -> None:
    env = make_stack_env(tmp_path, ("s3",)) | {"TO_BIKES_S3_PORT": str(busy_port)}
    result = run_stack_cli(env, "up", "s3")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[-1]] and lines[0].startswith("error: port ")
    assert f"port {busy_port} " in lines[0] and "TO_BIKES_S3_PORT" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "s3.pid").exists()


@pytest.mark.unit
def test_a_busy_port_stops_the_start_before_any_server_is_launched(tmp_path: Path, busy_port: int) -> None:
    env = make_stack_env(tmp_path, ("s3", "mlflow"))
    env["TO_BIKES_MLFLOW_PORT"] = str(busy_port)
    with pytest.raises(UserError, match=f"port {busy_port} "):
        start_stack(env.settings(), ("s3", "mlflow"))
    assert read_pid(tmp_path, "s3") is None
    assert is_port_free("127.0.0.1", int(env["TO_BIKES_S3_PORT"]))


@pytest.mark.unit
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "localhost-ish"])
def test_a_non_loopback_host_is_refused(tmp_path: Path, host: str) -> None:
    env = make_stack_env(tmp_path, ("s3",)) | {"TO_BIKES_HOST": host}
    with pytest.raises(UserError, match="loopback"):
        build_services(env.settings(), ("s3",))


@pytest.mark.unit
def test_servers_inherit_no_caller_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "caller-secret")
    monkeypatch.setenv("PREFECT_API_KEY", "caller-key")
    env = base_env({"EXTRA": "1"})
    assert "AWS_SECRET_ACCESS_KEY" not in env and "PREFECT_API_KEY" not in env
    assert env["EXTRA"] == "1"


@pytest.mark.unit
def test_multipart_etag_matches_the_s3_rule(tmp_path: Path) -> None:
    data = os.urandom(AWSCLI_PART_SIZE + 123)
    path = tmp_path / "two-parts.bin"
    path.write_bytes(data)
    sha, md5, multipart = digest_file(path)
    parts = [data[:AWSCLI_PART_SIZE], data[AWSCLI_PART_SIZE:]]
    part_digests = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in parts)
    assert multipart == hashlib.md5(part_digests, usedforsecurity=False).hexdigest() + "-2"
    assert md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert sha == hashlib.sha256(data).hexdigest()


@pytest.mark.integration
def test_running_stack_stops_its_servers_when_the_body_fails(tmp_path: Path) -> None:
    env = make_stack_env(tmp_path, ("s3",))
    with pytest.raises(RuntimeError, match="boom"), running_stack(env, ("s3",)):
        record = read_pid(tmp_path, "s3")
        assert record is not None and record.is_alive()
        raise RuntimeError("boom")
    assert not record.is_alive()
    assert read_pid(tmp_path, "s3") is None
    assert is_port_free("127.0.0.1", int(env["TO_BIKES_S3_PORT"]))


@pytest.mark.integration
def test_start_twice_is_harmless_and_down_ends_only_its_own_pids(tmp_path: Path) -> None:
    env = make_stack_env(tmp_path, ("s3",))
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        first = start_stack(env.settings(), ("s3",), die_with_parent=True)
        second = start_stack(env.settings(), ("s3",), die_with_parent=True)
        assert [s.pid for s in first] == [s.pid for s in second] and first[0].healthy
        stop_stack(env.settings(), ("s3",))
        assert bystander.poll() is None
        assert is_port_free("127.0.0.1", int(env["TO_BIKES_S3_PORT"]))
        assert stop_stack(env.settings(), ("s3",)) == ["s3       was not running"]
    finally:
        stop_stack(env.settings(), ("s3",))
        bystander.kill()
        bystander.wait()


@pytest.mark.integration
def test_a_stale_pid_file_is_replaced(tmp_path: Path) -> None:
    env = make_stack_env(tmp_path, ("s3",))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "s3.pid").write_text('{"pid": 999999, "start_ticks": 1, "port": 1}')
    try:
        states = start_stack(env.settings(), ("s3",), die_with_parent=True)
        assert states[0].healthy and states[0].pid != 999999
    finally:
        stop_stack(env.settings(), ("s3",))


@pytest.mark.integration
def test_down_also_ends_what_a_dead_leader_left_behind(tmp_path: Path) -> None:
    leaves_a_child = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "time.sleep(120)\n"
    )
    service = Service("s3", 1, "127.0.0.1", [sys.executable, "-c", leaves_a_child], dict(os.environ), "/")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    record = spawn(service, tmp_path, die_with_parent=True)
    try:
        for _ in range(100):
            if len(record.members()) == 2:
                break
            time.sleep(0.1)
        orphan = next(pid for pid in record.members() if pid != record.pid)
        os.kill(record.pid, signal.SIGKILL)
        os.waitpid(record.pid, 0)
        assert not record.leader_alive() and record.members() == [orphan]
        assert stop_record("s3", record)
        assert not record.is_alive() and process_start_time(orphan) is None
        assert bystander.poll() is None
    finally:
        stop_record("s3", record)
        bystander.kill()
        bystander.wait()


@pytest.mark.integration
def test_two_concurrent_starts_share_one_server(tmp_path: Path) -> None:
    env = make_stack_env(tmp_path, ("s3",))

    def start(_: int) -> list:  # not die_with_parent: the signal follows the thread, which ends here
        return start_stack(env.settings(), ("s3",))

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = list(pool.map(start, range(2)))
        assert runs[0][0].pid == runs[1][0].pid == read_pid(tmp_path, "s3").pid
        assert all(run[0].healthy for run in runs)
        assert read_pid(tmp_path, "s3").is_alive()
    finally:
        stop_stack(env.settings(), ("s3",))


@pytest.mark.unit
def test_a_held_state_lock_makes_the_second_caller_wait_then_fail_in_one_sentence(tmp_path: Path) -> None:
    with state_lock(tmp_path):
        started = time.monotonic()
        sentence = r"another `python -m stack` holds .*stack\.lock; let it finish\.$"
        with pytest.raises(UserError, match=sentence), state_lock(tmp_path, timeout_s=0.5):
            pass
        assert time.monotonic() - started >= 0.5
    with state_lock(tmp_path, timeout_s=0.5):  # released: the next caller gets it at once
        pass


@pytest.mark.unit
def test_a_pid_file_from_before_psutil_still_names_its_live_process(tmp_path: Path) -> None:
    """`make down` after an upgrade: a pid file holding clock ticks since boot is still understood."""
    import psutil

    me = psutil.Process()
    ticks = round((me.create_time() - psutil.boot_time()) * os.sysconf("SC_CLK_TCK"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "s3.pid").write_text(json.dumps({"pid": me.pid, "start_ticks": ticks, "port": 1}))
    record = read_pid(tmp_path, "s3")
    assert record is not None and record.leader_alive()
    (tmp_path / "run" / "s3.pid").write_text(json.dumps({"pid": me.pid, "start_ticks": ticks - 5, "port": 1}))
    assert not read_pid(tmp_path, "s3").leader_alive()  # same pid, another start: a recycled pid


@pytest.mark.unit
def test_stop_ends_a_recorded_worker_before_the_servers_and_nothing_else(tmp_path: Path) -> None:
    """`make down` stops the demo worker recorded in run/worker.pid, but not a look-alike process."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    worker = subprocess.Popen(sleeper, start_new_session=True)
    bystander = subprocess.Popen(sleeper, start_new_session=True)
    try:
        started = process_start_time(worker.pid)
        assert started is not None
        write_pid(tmp_path, "worker", PidRecord(pid=worker.pid, started=started, port=0))
        messages = stop_clients(tmp_path, ("s3", "prefect", "mlflow"))
        assert worker.wait(timeout=30) is not None
        assert messages == [f"worker   stopped (pid {worker.pid})"]
        assert bystander.poll() is None
        assert not (tmp_path / "run" / "worker.pid").exists()
    finally:
        for process in (worker, bystander):
            if process.poll() is None:
                process.kill()
                process.wait()
