"""The registry tests' MLflow server: real, with the local stack's S3 for artifacts, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stack.embedded import StackEnv, make_stack_env, running_stack

SERVICES = ("s3", "mlflow")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """An MLflow server (SQLite store, artifacts on the stack's S3) on a free port, for one module."""
    env = make_stack_env(tmp_path_factory.mktemp("registry-stack"), SERVICES)
    with running_stack(env, SERVICES):
        yield env
