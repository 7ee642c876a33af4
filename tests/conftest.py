"""Shared fixtures: an S3 server, and the whole local stack, on free ports on 127.0.0.1.

Both are session-scoped, keep their state in a pytest temporary folder, use a fresh random AWS
secret and the bucket ``to-bikes-test``, and are stopped at the end of the session even when a
test or the start itself fails. They yield a ``StackEnv``: a dict of the environment variables a
client needs (``TO_BIKES_*``, ``AWS_*``, and for the full stack ``PREFECT_API_URL``,
``PREFECT_HOME`` and ``MLFLOW_TRACKING_URI``) with the attributes ``endpoint_url``, ``bucket``,
``state_dir`` and ``settings()``. Use ``s3_env`` / ``stack_env`` to put them into ``os.environ``
for one test. Prefect is never imported here: tests/models run in the model environment.

Flows run in the pytest process (``flow(...)`` called directly) write Prefect's local files, such as
a failed task's pickled exception, under ``PREFECT_HOME``: the session gets a temporary one, so the
suite never reads or writes the user's ``~/.prefect``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.embedded import StackEnv, make_stack_env, running_stack

SESSION_HOME_PREFIX = "to-bikes-prefect-home-"


def pytest_configure(config: pytest.Config) -> None:
    """A temporary ``PREFECT_HOME`` for the session, whatever the shell says: the user's own (with
    its profiles, perhaps a Prefect Cloud key) is neither read nor written by the suite."""
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix=SESSION_HOME_PREFIX)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's temporary ``PREFECT_HOME``."""
    home = os.environ.get("PREFECT_HOME", "")
    if home and Path(home).name.startswith(SESSION_HOME_PREFIX):
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """A local S3 server (s3rver) with the bucket created; yields its client environment."""
    env = make_stack_env(tmp_path_factory.mktemp("s3-server"), ("s3",))
    with running_stack(env, ("s3",)):
        yield env


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """Prefect server, S3 and MLflow server (no blocks saved); yields their client environment."""
    env = make_stack_env(tmp_path_factory.mktemp("local-stack"))
    with running_stack(env):
        yield env


@pytest.fixture
def s3_env(s3_server: StackEnv, monkeypatch: pytest.MonkeyPatch) -> StackEnv:
    """``s3_server``'s variables set in ``os.environ`` for one test."""
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture
def stack_env(local_stack: StackEnv, monkeypatch: pytest.MonkeyPatch) -> StackEnv:
    """``local_stack``'s variables set in ``os.environ`` for one test."""
    for key, value in local_stack.items():
        monkeypatch.setenv(key, value)
    return local_stack
