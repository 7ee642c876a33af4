"""PostgreSQL for the Prefect server (``TO_BIKES_PREFECT_DB=postgres``): Debian's server binaries, one
cluster under ``<state>/postgres`` (kept across ``make down && make up``), listening on 127.0.0.1 only.

The first start runs ``initdb`` (superuser ``prefect``, password authentication, a random password kept
in ``<state>/postgres.secret``, mode 600) and creates the database ``prefect`` in single-user mode,
before any server listens. PostgreSQL refuses to run as root: as root, the cluster belongs to and runs
as the ``postgres`` account that Debian's package creates. The password reaches the Prefect server in
its environment only (``PREFECT_API_DATABASE_CONNECTION_URL``), never on a command line.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from models.core.errors import UserError
from models.core.settings import Settings

DB_NAME = "prefect"
DB_USER = "prefect"
RUN_AS = "postgres"
INSTALL_ROOT = Path("/usr/lib/postgresql")
INIT_TIMEOUT_S = 120
PROBLEM = re.compile(r"\b(ERROR|FATAL|PANIC):")  # PostgreSQL's severities above WARNING
LOCK_RACE = 'violates unique constraint "uq_concurrency_limit_v2__name"'
SHUTDOWN = "due to administrator command"  # sessions ended by a requested stop (make down): not a fault
# Prefect's task-run recorder retries a bulk upsert that lost a race with a concurrent batch (its
# services/task_run_recorder.py, "TOCTOU races between concurrent recorder instances"); the first try's
# INSERT is logged here. A race it cannot recover from is its own WARNING in the Prefect server's log,
# "Duplicate task_run, discarding event" (DISCARDED_TASK_RUN_EVENT), which bench.concurrent_runs counts.
TASK_RUN_RACE = 'violates unique constraint "pk_task_run"'
DISCARDED_TASK_RUN_EVENT = "Duplicate task_run, discarding event"


def postgres_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding the server; else a UserError."""
    found = sorted(
        INSTALL_ROOT.glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0
    )
    if not found:
        raise UserError(
            f"PostgreSQL is not installed (no {INSTALL_ROOT}/<version>/bin/postgres); "
            "run `make postgres-deps`."
        )
    return found[-1].parent


def run_as_user() -> str | None:
    """``postgres`` when we are root (the server refuses root), else None (our own user)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        raise UserError(
            f"running as root but no {RUN_AS!r} account exists; run `make postgres-deps`."
        ) from None
    return RUN_AS


def data_dir(state: Path) -> Path:
    return state / "postgres"


def read_password(state: Path) -> str:
    """The cluster's password, made on first use (``<state>/postgres.secret``, readable by us only)."""
    path = state / "postgres.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def connection_url(settings: Settings, state: Path) -> str:
    """The SQLAlchemy URL Prefect's server uses (holds the password: environment only)."""
    password = quote(read_password(state), safe="")
    return f"postgresql+asyncpg://{DB_USER}:{password}@{settings.host}:{settings.postgres_port}/{DB_NAME}"


def server_command(settings: Settings, state: Path) -> list[str]:
    """``postgres`` on host:port, no Unix socket (nothing but TCP on loopback)."""
    return [
        str(postgres_bin() / "postgres"), "-D", str(data_dir(state)),
        "-h", settings.host, "-p", str(settings.postgres_port),
        "-c", "unix_socket_directories=", "-c", "max_connections=200",
    ]  # fmt: skip


def isready_command(settings: Settings) -> list[str]:
    """``pg_isready`` against the server: exit 0 once it accepts connections (``make doctor``)."""
    host, port = settings.host, str(settings.postgres_port)
    return [str(postgres_bin() / "pg_isready"), "-q", "-h", host, "-p", port, "-d", DB_NAME, "-U", DB_USER]


def health_command(settings: Settings, state: Path) -> list[str]:
    """The start probe of the stack's server: ``pg_isready`` only once the status line of
    ``postmaster.pid`` says ``ready`` (what ``pg_ctl start -w`` waits for). A connection tried while the
    server starts up is refused and logged as ``FATAL: the database system is starting up``: on a loaded
    machine pg_isready alone left that line in the log the tests keep free of errors."""
    pid_file = data_dir(state) / "postmaster.pid"
    ready = 'sed -n 8p "$0" 2>/dev/null | grep -q "^ready" && exec "$@"'
    return ["sh", "-c", ready, str(pid_file), *isready_command(settings)]


def log_problems(state: Path) -> list[str]:
    """The ERROR, FATAL and PANIC lines of the PostgreSQL server's log (``<state>/logs/postgres.log``),
    but for the sessions a requested stop ends, the refused INSERT of a work lock's concurrency
    limit that another run created first (``orchestration.flows.work_locks`` then uses that one) and
    the task-run upsert Prefect's recorder retries (``TASK_RUN_RACE``)."""
    log = state / "logs" / "postgres.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    expected = (SHUTDOWN, LOCK_RACE, TASK_RUN_RACE)
    return [
        line[:300]
        for line in text.splitlines()
        if PROBLEM.search(line) and not any(known in line for known in expected)
    ]


def run_step(command: list[str], user: str | None, stdin: str = "") -> None:
    """One setup command as the cluster's owner; its output in the error when it fails."""
    done = subprocess.run(
        command, input=stdin, user=user, capture_output=True, text=True, timeout=INIT_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"{Path(command[0]).name} failed for the Prefect database: {tail[0]}")


def ensure_cluster(settings: Settings, state: Path) -> None:
    """``initdb`` and ``CREATE DATABASE prefect`` the first time; nothing when the cluster exists."""
    folder = data_dir(state)
    if (folder / "PG_VERSION").exists():
        return
    user = run_as_user()
    bin_dir = postgres_bin()
    shutil.rmtree(folder, ignore_errors=True)  # a half-made cluster from an interrupted first start
    folder.mkdir(parents=True, mode=0o700)
    pwfile = state / "postgres.pwfile"
    pwfile.touch(mode=0o600)
    pwfile.write_text(read_password(state) + "\n")
    try:
        if user is not None:
            owner = pwd.getpwnam(user)
            for path in (folder, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        initdb = [str(bin_dir / "initdb"), "-D", str(folder), "-U", DB_USER, f"--pwfile={pwfile}"]
        run_step([*initdb, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"], user)
    except (UserError, OSError):
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        pwfile.unlink(missing_ok=True)
    single = [str(bin_dir / "postgres"), "--single", "-D", str(folder), "-c", "unix_socket_directories="]
    run_step([*single, "postgres"], user, stdin=f"CREATE DATABASE {DB_NAME} OWNER {DB_USER};\n")
