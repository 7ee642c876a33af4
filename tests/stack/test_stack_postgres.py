"""The Prefect server on PostgreSQL (TO_BIKES_PREFECT_DB=postgres): a real server, kept across down and up.

The stack's state folder is a ``mkdtemp`` folder opened to other users for traversal only (0711): as
root the cluster belongs to Debian's ``postgres`` account, which cannot enter pytest's 0700 folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stack.control import stack_status, start_stack, stop_stack
from stack.embedded import StackEnv, make_stack_env
from stack.postgres import DB_NAME, DB_USER, log_problems, postgres_bin, read_password
from stack.processes import read_pid
from tests.stack.stack_helpers import run_stack_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg_env() -> Iterator[StackEnv]:
    """A Prefect server on PostgreSQL (no S3, no MLflow); stopped and its folder removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="to-bikes-pg-"))
    folder.chmod(0o711)
    env = make_stack_env(folder / "state", prefect_db="postgres")
    try:
        start_stack(env.settings(), ("prefect",), die_with_parent=True)
        yield env
    finally:
        stop_stack(env.settings(), ("prefect",))
        shutil.rmtree(folder, ignore_errors=True)


def psql(env: StackEnv, sql: str) -> str:
    """One query through ``psql`` over TCP with the cluster's password (environment only)."""
    settings = env.settings()
    command = [str(postgres_bin() / "psql"), "-h", settings.host, "-p", str(settings.postgres_port)]
    command += ["-U", DB_USER, "-d", DB_NAME, "-Atc", sql]
    secret = {"PGPASSWORD": read_password(env.state_dir)}
    done = subprocess.run(command, env={**os.environ, **secret}, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def create_variable(env: StackEnv, name: str) -> None:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import VariableCreate

    with SyncPrefectClient(env["PREFECT_API_URL"]) as client:
        client.create_variable(VariableCreate(name=name, value="kept"))


def test_prefect_migrates_into_postgres_which_listens_on_loopback(pg_env: StackEnv) -> None:
    names = [state.name for state in stack_status(pg_env.settings(), ("prefect",))]
    assert names == ["postgres", "prefect"]
    assert (
        int(psql(pg_env, "select count(*) from information_schema.tables where table_schema='public'")) > 20
    )
    assert psql(pg_env, "show listen_addresses") == "127.0.0.1"
    assert (pg_env.state_dir / "postgres" / "PG_VERSION").exists()
    assert oct((pg_env.state_dir / "postgres.secret").stat().st_mode & 0o777) == "0o600"
    assert log_problems(pg_env.state_dir) == []  # the migrations left no ERROR/FATAL/PANIC in its log


def test_status_and_doctor_cover_postgres(pg_env: StackEnv) -> None:
    status = run_stack_cli(pg_env, "status")
    assert "postgres running    postgresql://127.0.0.1:" in status.stdout
    doctor = run_stack_cli(pg_env, "doctor")
    assert "ok    prefect database" in doctor.stdout and "accepts connections" in doctor.stdout
    secret = read_password(pg_env.state_dir)
    assert secret not in status.stdout + status.stderr + doctor.stdout + doctor.stderr


def emit_follower(env: StackEnv) -> str:
    """An event that follows one the server never saw, as a run's Failed follows its Running when the
    server restarted in between: Prefect's causal ordering holds it until the leader counts as lost."""
    event_id = str(uuid.uuid4())
    event = {
        "id": event_id,
        "occurred": datetime.now(UTC).isoformat(),
        "event": "to-bikes.test.follower",
        "resource": {"prefect.resource.id": "to-bikes.test.probe"},
        "follows": str(uuid.uuid4()),
    }
    request = urllib.request.Request(
        env["PREFECT_API_URL"] + "/events",
        data=json.dumps([event]).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    return event_id


def held_followers(env: StackEnv) -> list[str]:
    """The ids of the events the server's causal ordering holds in its database."""
    return psql(env, "select follower_event_id from automation_event_follower").splitlines()


def test_data_survive_down_and_up(pg_env: StackEnv) -> None:
    create_variable(pg_env, "kept_across_restart")
    # Held events live in the database (stack.services), so a failed run's held message survives too.
    follower = emit_follower(pg_env)
    for _ in range(60):  # the server's triggers service takes it up asynchronously
        if follower in held_followers(pg_env):
            break
        time.sleep(0.5)
    assert follower in held_followers(pg_env)
    first = read_pid(pg_env.state_dir, "postgres")
    stopped = run_stack_cli(pg_env, "down", "prefect")
    assert "postgres stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    assert "postgres stopped" in run_stack_cli(pg_env, "status").stdout
    start_stack(pg_env.settings(), ("prefect",), die_with_parent=True)
    assert read_pid(pg_env.state_dir, "postgres").pid != first.pid
    names = psql(pg_env, "select name from variable")
    assert "kept_across_restart" in names.splitlines()
    assert follower in held_followers(pg_env)
    assert log_problems(pg_env.state_dir) == []


@pytest.mark.unit
def test_log_problems_keeps_real_errors_and_leaves_out_a_stop_and_the_races_prefect_retries(
    tmp_path: Path,
) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "postgres.log").write_text(
        "LOG:  database system is ready to accept connections\n"
        "FATAL:  terminating connection due to administrator command\n"
        'ERROR:  duplicate key value violates unique constraint "uq_concurrency_limit_v2__name"\n'
        'ERROR:  duplicate key value violates unique constraint "uq_flow_run__flow_id_idempotency_key"\n'
        'ERROR:  duplicate key value violates unique constraint "pk_task_run"\n'
        "PANIC:  could not write to file\n"
    )
    assert [line.split(":", 1)[0] for line in log_problems(tmp_path)] == ["ERROR", "PANIC"]
    assert "uq_flow_run__flow_id_idempotency_key" in log_problems(tmp_path)[0]


def test_the_start_probe_tries_no_connection_while_the_server_starts_up() -> None:
    # On a loaded machine the probe once connected while PostgreSQL was starting up, and the server
    # logged "FATAL: the database system is starting up". Here the start probe runs without a pause
    # from the server's spawn until it answers (five times), as a slow start would let it; the log
    # must hold no such line (pg_isready alone leaves them).
    import threading

    from stack.postgres import health_command

    folder = Path(tempfile.mkdtemp(prefix="to-bikes-pg-probe-"))
    folder.chmod(0o711)
    env = make_stack_env(folder / "state", prefect_db="postgres")
    settings, state = env.settings(), env.state_dir
    probe, answered, stop = health_command(settings, state), [], threading.Event()

    def hammer() -> None:
        while not stop.is_set() and len(answered) < 5:
            if subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0:
                answered.append(time.monotonic())

    thread = threading.Thread(target=hammer)
    try:
        from stack.postgres import ensure_cluster

        ensure_cluster(settings, state)  # initdb first: only the server's start is probed
        thread.start()
        start_stack(settings, ("postgres",), die_with_parent=True)
        thread.join(timeout=120)
        assert len(answered) == 5, "the probe never found the server ready"
        starting = [line for line in log_problems(state) if "starting up" in line]
        assert starting == [], starting
    finally:
        stop.set()
        thread.join(timeout=60)
        stop_stack(settings, ("postgres",))
        shutil.rmtree(folder, ignore_errors=True)
