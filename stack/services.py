"""What each server of the local stack is: its command line, environment, port and health check.

Secrets travel in environment variables only (never on a command line, where ``ps`` shows them),
and each server gets only the secrets it needs: the S3 and MLflow servers the local AWS key pair,
the Prefect server its optional API auth string.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT, Settings

STACK_DIR = PROJECT_ROOT / "stack"
NODE_MODULES = STACK_DIR / "node_modules"
MODEL_BIN = PROJECT_ROOT / ".venv" / "bin"
AGENT_BIN = PROJECT_ROOT / "agent" / ".venv" / "bin"
SERVICE_NAMES = ("s3", "prefect", "mlflow")
# Started before the Prefect server when TO_BIKES_PREFECT_DB=postgres (stack/postgres.py).
POSTGRES = "postgres"
# Variables no server inherits from the caller; each server gets back only what it needs.
_PRIVATE_PREFIXES = ("AWS_", "MLFLOW_", "PREFECT_", "TO_BIKES_")
# Server-side Prefect settings (e.g. a Postgres database URL) that the Prefect server does inherit.
_PREFECT_SERVER_PREFIXES = ("PREFECT_SERVER_", "PREFECT_API_DATABASE_")
# Prefect's foreman marks a worker OFFLINE once it has been silent for INACTIVITY_HEARTBEAT_MULTIPLE of its
# heartbeat intervals (FALLBACK_... when it sent none); checked every LOOP_SECONDS (Prefect's default 15 s).
# `make status` and `make run` read that status as is (stack/worker_status.py). A caller's own
# PREFECT_SERVER_SERVICES_FOREMAN_* variables win.
CAUSAL_ORDERING_DB = "prefect.server.events.ordering.db"  # on PostgreSQL (prefect_service)
FOREMAN_SETTINGS = {
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "true",
    "PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS": "5",
    "PREFECT_SERVER_SERVICES_FOREMAN_INACTIVITY_HEARTBEAT_MULTIPLE": "3",
    "PREFECT_SERVER_SERVICES_FOREMAN_FALLBACK_HEARTBEAT_INTERVAL_SECONDS": "30",
}


@dataclass(frozen=True)
class Service:
    """One server: how to start it and how to know it is up."""

    name: str
    port: int
    host: str
    command: list[str]
    env: dict[str, str] = field(repr=False)
    health_path: str
    any_http_status_is_healthy: bool = False
    # A command that exits 0 when the server is up (for a server that does not speak HTTP).
    health_command: list[str] | None = None
    # The account the server runs as (PostgreSQL refuses root); None: ours.
    user: str | None = None

    @property
    def url(self) -> str:
        scheme = "postgresql" if self.name == POSTGRES else "http"
        return f"{scheme}://{self.host}:{self.port}"


def state_dir_of(settings: Settings) -> Path:
    """The absolute state folder (a relative ``TO_BIKES_STATE_DIR`` is relative to the project)."""
    path = Path(settings.state_dir)
    return path if path.is_absolute() else PROJECT_ROOT / path


def check_loopback(host: str) -> None:
    """Refuse any bind address that is not loopback: the stack is never reachable from outside."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UserError(
            f"TO_BIKES_HOST={host} is not a loopback IP address; the local stack binds 127.0.0.1 only."
        )


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without project, AWS, MLflow and Prefect variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}
    env.update(extra)
    return env


def local_aws_env(settings: Settings) -> dict[str, str]:
    """The local key pair for the servers that talk S3 (never passed on a command line)."""
    key_id, secret = settings.aws_key_pair()
    if not key_id or not secret:
        raise UserError(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set (or both unset) for the stack."
        )
    return {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": settings.aws_region,
    }


def s3_service(settings: Settings, state: Path) -> Service:
    """s3rver on Node.js, objects as plain files under ``state/s3`` (kept across restarts)."""
    node = shutil.which("node")
    if node is None:
        raise UserError("Node.js (`node`) is not on PATH; the local S3 server s3rver needs Node.js 20.")
    if not (NODE_MODULES / "s3rver").is_dir():
        raise UserError(f"s3rver is not installed in {NODE_MODULES}; run `make stack-deps` (npm ci) first.")
    # s3rver signs ListObjectsV2 continuation tokens with DES, which Node 20's OpenSSL 3 only offers
    # through the legacy provider: without it every truncated (paginated) listing answers 500.
    command = [node, "--openssl-legacy-provider", str(STACK_DIR / "s3rver.js")]
    command += [settings.host, str(settings.s3_port), str(state / "s3")]
    env = base_env({**local_aws_env(settings), "TO_BIKES_BUCKET": settings.bucket})
    return Service(
        "s3", settings.s3_port, settings.host, [*command], env, "/", any_http_status_is_healthy=True
    )


def prefect_service(settings: Settings, state: Path) -> Service:
    """``prefect server start`` from agent/.venv with its SQLite database under ``state/prefect``."""
    prefect = AGENT_BIN / "prefect"
    if not prefect.exists():
        raise UserError(f"{prefect} is missing; run `make install` to build agent/.venv.")
    extra = FOREMAN_SETTINGS | {k: v for k, v in os.environ.items() if k.startswith(_PREFECT_SERVER_PREFIXES)}
    extra |= {
        "PATH": f"{AGENT_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PREFECT_HOME": str(state / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Concurrency leases on disk (under PREFECT_HOME), not in the server's memory: a slot held while
        # the server restarts is then freed when its lease expires, instead of staying taken for ever
        # (orchestration.flows.work_locks: the next identical run would wait without end).
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": os.environ.get(
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE", "prefect.server.concurrency.lease_storage.filesystem"
        ),
        # The UI asks /ui-settings for its API; without this it answers port 4200 whatever --port says.
        "PREFECT_UI_API_URL": settings.prefect_api_url_override
        or f"http://{settings.host}:{settings.prefect_port}/api",
    }
    if settings.prefect_db == "postgres":
        from stack.postgres import connection_url

        extra["PREFECT_API_DATABASE_CONNECTION_URL"] = connection_url(settings, state)
        # Prefect's causal ordering keeps an event that arrived before the one it follows (a run's Failed
        # after its Running, across a server restart) in the database instead of memory, so a second
        # restart within the 15 min Prefect holds it does not lose the run's failed-run message. Not on
        # SQLite: it costs a write per state event, and SQLite's one writer already locks under load.
        extra.setdefault("PREFECT_SERVER_EVENTS_CAUSAL_ORDERING", CAUSAL_ORDERING_DB)
    if settings.prefect_auth_string is not None:
        extra["PREFECT_SERVER_API_AUTH_STRING"] = settings.prefect_auth_string.get_secret_value()
    command = [str(prefect), "server", "start", "--host", settings.host, "--port", str(settings.prefect_port)]
    return Service("prefect", settings.prefect_port, settings.host, command, base_env(extra), "/api/health")


def mlflow_service(settings: Settings, state: Path) -> Service:
    """``mlflow server`` from .venv: SQLite runs/registry, artifacts proxied to ``s3://bucket/mlflow``."""
    mlflow = MODEL_BIN / "mlflow"
    if not mlflow.exists():
        raise UserError(f"{mlflow} is missing; run `make install` to build .venv.")
    extra = {
        "PATH": f"{MODEL_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # The job runner (GenAI judges, trace rollups) is unused here and starts seven more processes.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **local_aws_env(settings),
    }
    if settings.s3_endpoint:
        extra["MLFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint
    command = [
        str(mlflow), "server",
        "--backend-store-uri", f"sqlite:///{state / 'mlflow' / 'mlflow.db'}",
        "--artifacts-destination", settings.s3_uri(settings.mlflow_prefix),
        "--serve-artifacts",
        "--host", settings.host, "--port", str(settings.mlflow_port),
        "--workers", "1",
    ]  # fmt: skip
    return Service("mlflow", settings.mlflow_port, settings.host, command, base_env(extra), "/health")


def postgres_service(settings: Settings, state: Path) -> Service:
    """PostgreSQL on 127.0.0.1 for the Prefect server, data under ``state/postgres`` (stack/postgres.py)."""
    from stack.postgres import health_command, run_as_user, server_command

    command, health = server_command(settings, state), health_command(settings, state)
    env = base_env({"LC_ALL": "C"})
    return Service(
        POSTGRES, settings.postgres_port, settings.host, command, env, "", False, health, run_as_user()
    )


def with_database(settings: Settings, names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` with PostgreSQL first when the Prefect server uses it (it must answer before Prefect)."""
    if settings.prefect_db == "postgres" and "prefect" in names and POSTGRES not in names:
        return (POSTGRES, *names)
    return names


def build_services(settings: Settings, names: tuple[str, ...] = SERVICE_NAMES) -> list[Service]:
    """The services named, in start order, for these settings (PostgreSQL added before Prefect if used)."""
    check_loopback(settings.host)
    state = state_dir_of(settings)
    builders = {
        "s3": s3_service,
        "prefect": prefect_service,
        "mlflow": mlflow_service,
        POSTGRES: postgres_service,
    }
    names = with_database(settings, names)
    unknown = [n for n in names if n not in builders]
    if unknown:
        raise UserError(f"unknown service {unknown[0]!r}; choose from {', '.join(SERVICE_NAMES)}.")
    return [builders[name](settings, state) for name in names]
