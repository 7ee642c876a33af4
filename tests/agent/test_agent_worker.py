"""The worker container against the local stack: polls the pool, healthy, stops cleanly on Ctrl-C and stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from stack.embedded import StackEnv
from tests.agent.conftest import BuiltImage, worker_env
from tests.agent.docker_helpers import (
    SCRIPTS,
    container_exists,
    container_logs,
    docker,
    online_workers,
    run_script,
    wait_for,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.integration]
EXIT_WAIT_S = 60
STARTED = re.compile(r"Worker '([^']+)' started!")


def test_container_worker_polls_the_pool_and_is_healthy(container_worker: dict[str, str]) -> None:
    cid_file = Path(container_worker["TO_BIKES_STATE_DIR"]) / "agent-docker.cid"
    cid = cid_file.read_text().strip()
    started = wait_for(lambda: STARTED.search(container_logs(cid)), "the worker's start message")
    name = started[1]
    assert wait_for(lambda: name in online_workers(container_worker), f"{name} online in the pool")
    # The image's HEALTHCHECK command, run now rather than after its 30 s interval.
    health = wait_for(
        lambda: docker("exec", cid, "to-bikes-agent", "health", check=False).returncode == 0,
        "the worker health endpoint",
        attempts=60,
    )
    assert health, container_logs(cid)
    status = run_script("worker.sh", "status", env=container_worker)
    assert status.returncode == 0 and " running " in status.stdout, status.stdout + status.stderr


def test_stop_ends_only_the_recorded_container(container_worker: dict[str, str]) -> None:
    cid_file = Path(container_worker["TO_BIKES_STATE_DIR"]) / "agent-docker.cid"
    cid = cid_file.read_text().strip()
    stopped = run_script("worker.sh", "stop", env=container_worker)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"agent container: stopped {cid[:12]}"
    assert not container_exists(cid)
    assert not cid_file.exists()
    again = run_script("worker.sh", "stop", env=container_worker)
    assert again.stdout.strip() == "agent container: nothing to stop"


def test_ctrl_c_on_the_foreground_worker_stops_and_removes_the_container(
    docker_engine: dict[str, str], local_stack: StackEnv, agent_image: BuiltImage, tmp_path: Path
) -> None:
    env = worker_env(docker_engine, local_stack, tmp_path)
    cid_file = tmp_path / "agent-docker.cid"
    # A session of its own, like a terminal: Ctrl-C goes to the whole foreground process group.
    with subprocess.Popen(
        [str(SCRIPTS / "worker.sh"), "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as foreground:
        try:
            wait_for(lambda: cid_file.is_file() and cid_file.read_text().strip(), "the cid file")
            cid = cid_file.read_text().strip()
            wait_for(lambda: "started!" in container_logs(cid), "the worker to start")
            os.killpg(foreground.pid, signal.SIGINT)
            output, _ = foreground.communicate(timeout=EXIT_WAIT_S)
        finally:
            if foreground.poll() is None:
                os.killpg(foreground.pid, signal.SIGKILL)
                run_script("worker.sh", "stop", env=env)
    assert not container_exists(cid), output
    assert not cid_file.exists(), output
    assert "Traceback" not in output, output
