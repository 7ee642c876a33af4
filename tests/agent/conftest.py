"""Fixtures of the agent image tests: a Docker engine, the image built from the checkout, a container worker.

The engine is started by ``agent/docker/engine.sh`` only when none answers, with its pid file in a
pytest folder, and stopped at the end only if this session started it. The image is built by
``agent/docker/image.sh`` under its own name with the stack's secret and two canary secrets in the
build's environment, so the tests can prove that none of them reaches the image.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stack.embedded import StackEnv, free_ports
from tests.agent.docker_helpers import clean_env, container_logs, docker, run_script

TEST_IMAGE = "to-bikes-agent-test"


@dataclass(frozen=True)
class BuiltImage:
    """The test image, the secrets present while it was built, and how long the build took."""

    name: str
    canaries: tuple[str, ...]
    build_seconds: float
    build_output: str


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An answering Docker engine; yields the environment for the scripts (state dir of this session)."""
    env = clean_env({"TO_BIKES_STATE_DIR": str(tmp_path_factory.mktemp("docker-state"))})
    started = run_script("engine.sh", "start", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield env
    finally:
        stopped = run_script("engine.sh", "stop", env=env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@pytest.fixture(scope="session")
def agent_image(docker_engine: dict[str, str], local_stack: StackEnv) -> Iterator[BuiltImage]:
    """The agent image built from this checkout, with secrets in the build's environment."""
    canaries = ("canary-" + secrets.token_hex(16), "canary-" + secrets.token_hex(16))
    env = docker_engine | dict(local_stack) | {"TO_BIKES_AGENT_IMAGE": TEST_IMAGE}
    env |= {"TO_BIKES_STATE_DIR": docker_engine["TO_BIKES_STATE_DIR"]}
    env |= {"AWS_SECRET_ACCESS_KEY": canaries[0], "PREFECT_API_KEY": canaries[1]}
    started = time.monotonic()
    built = run_script("image.sh", env=env)
    seconds = time.monotonic() - started
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    try:
        yield BuiltImage(
            name=f"{TEST_IMAGE}:latest",
            canaries=(*canaries, local_stack["AWS_SECRET_ACCESS_KEY"]),
            build_seconds=seconds,
            build_output=built.stdout,
        )
    finally:
        tags = docker("images", "--format", "{{.Repository}}:{{.Tag}}", TEST_IMAGE, check=False).stdout
        for tag in tags.split():
            docker("rmi", tag, check=False)


def worker_env(docker_engine: dict[str, str], local_stack: StackEnv, state_dir: Path) -> dict[str, str]:
    """The environment for ``worker.sh``: the stack's settings, a free health port, a unique name."""
    env = docker_engine | dict(local_stack)
    return env | {
        "TO_BIKES_STATE_DIR": str(state_dir),
        "TO_BIKES_AGENT_IMAGE": TEST_IMAGE,
        "TO_BIKES_AGENT_CONTAINER": f"to-bikes-agent-test-{secrets.token_hex(4)}",
        "PREFECT_WORKER_WEBSERVER_PORT": str(free_ports(1)[0]),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }


@pytest.fixture
def container_worker(
    docker_engine: dict[str, str], local_stack: StackEnv, agent_image: BuiltImage, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """A detached worker container for the stack's pool; stopped (and its logs shown) afterwards."""
    env = worker_env(docker_engine, local_stack, tmp_path)
    started = run_script("worker.sh", "start", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    cid_file = tmp_path / "agent-docker.cid"
    try:
        yield env
    finally:
        print(container_logs(cid_file))  # shown by pytest only when the test failed
        stopped = run_script("worker.sh", "stop", env=env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
