"""A throw-away stack on free ports in a given folder, for tests and scripts (used by tests/conftest.py).

``running_stack`` starts the named servers with their own state folder, a fresh random secret and
a bucket of its own, yields the environment a client needs (a ``StackEnv``: a dict of variables
with a few attributes) and always stops what it started, even when the body or the start fails.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models.core.settings import LOCAL_HOST, Settings
from stack.control import start_stack, stop_stack
from stack.services import SERVICE_NAMES

TEST_BUCKET = "to-bikes-test"
TEST_KEY_ID = "to-bikes-local"
TEST_REGION = "us-east-1"
PREFIX = "TO_BIKES_"
# Standard variable -> settings field, for the variables Settings reads without the TO_BIKES_ prefix.
STANDARD_VARIABLES = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_DEFAULT_REGION": "aws_region",
    "PREFECT_API_URL": "prefect_api_url_override",
    "MLFLOW_TRACKING_URI": "mlflow_tracking_uri_override",
    "PREFECT_API_AUTH_STRING": "prefect_auth_string",
}


class StackEnv(dict[str, str]):
    """Environment variables for clients of a running stack, plus convenience attributes."""

    def __or__(self, other: dict[str, str]) -> StackEnv:  # type: ignore[override]
        """``env | {"VAR": "value"}`` stays a ``StackEnv``."""
        return StackEnv({**self, **other})

    @property
    def endpoint_url(self) -> str:
        return f"http://{self['TO_BIKES_HOST']}:{self['TO_BIKES_S3_PORT']}"

    @property
    def bucket(self) -> str:
        return self["TO_BIKES_BUCKET"]

    @property
    def state_dir(self) -> Path:
        return Path(self["TO_BIKES_STATE_DIR"])

    def s3_client(self) -> Any:
        """A boto3 client for this stack's S3 server and key pair."""
        from models.core.storage import s3_client

        return s3_client(self.settings())

    def settings(self) -> Settings:
        """Settings for exactly this stack: every ``TO_BIKES_*`` and standard variable in the dict
        wins over the caller's environment, and no ``.env`` file is read."""
        values: dict[str, str] = {
            name: self[key]
            for key in self
            if key.startswith(PREFIX) and (name := key.removeprefix(PREFIX).lower()) in Settings.model_fields
        }
        values |= {field: self[key] for key, field in STANDARD_VARIABLES.items() if key in self}
        return Settings(_env_file=None, **values)


def free_ports(count: int, host: str = LOCAL_HOST) -> list[int]:
    """``count`` distinct ports that are free right now (held open together while choosing)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]


def make_stack_env(
    state_dir: Path,
    names: tuple[str, ...] = SERVICE_NAMES,
    auth_string: str | None = None,
    prefect_db: str = "sqlite",
) -> StackEnv:
    """The environment of a new stack in ``state_dir``: free ports, a random secret, a test bucket;
    ``prefect_db="postgres"``: the Prefect server on a PostgreSQL server of its own (stack/postgres.py)."""
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env = StackEnv(
        TO_BIKES_HOST=LOCAL_HOST,
        TO_BIKES_STATE_DIR=str(state_dir),
        TO_BIKES_BUCKET=TEST_BUCKET,
        TO_BIKES_USE_LOCAL_S3="true",
        TO_BIKES_S3_ENDPOINT_URL="",
        TO_BIKES_S3_PORT=str(ports.get("s3", free_ports(1)[0])),
        AWS_ACCESS_KEY_ID=TEST_KEY_ID,
        AWS_SECRET_ACCESS_KEY="local-" + secrets.token_hex(12),
        AWS_DEFAULT_REGION=TEST_REGION,
    )
    if "prefect" in ports:
        env["TO_BIKES_PREFECT_PORT"] = str(ports["prefect"])
        env["PREFECT_API_URL"] = f"http://{LOCAL_HOST}:{ports['prefect']}/api"
        env["PREFECT_HOME"] = str(state_dir / "prefect")
    if "mlflow" in ports:
        env["TO_BIKES_MLFLOW_PORT"] = str(ports["mlflow"])
        env["MLFLOW_TRACKING_URI"] = f"http://{LOCAL_HOST}:{ports['mlflow']}"
    if prefect_db == "postgres":
        env["TO_BIKES_PREFECT_DB"] = "postgres"
        env["TO_BIKES_POSTGRES_PORT"] = str(free_ports(1)[0])
    if auth_string is not None:
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth_string
        env["PREFECT_API_AUTH_STRING"] = auth_string
    return env


@contextlib.contextmanager
def running_stack(env: StackEnv, names: tuple[str, ...] = SERVICE_NAMES) -> Iterator[StackEnv]:
    """Start ``names`` for ``env`` and yield it; stop them afterwards, whatever happened."""
    settings = env.settings()
    try:
        start_stack(settings, names, die_with_parent=True)
        yield env
    finally:
        stop_stack(settings, names)
