"""A flow run whose process starts while the Prefect server is down completes once the server is back
(issue 30: ``make soak`` saw such a run crash, and nothing reran it).

On a stack of this module's own, deployed as ``make blocks deploy`` does (no worker: the test is the
worker). A preprocess flow run of the deployment is created and set Pending, as a worker does before it
starts the run's process; the Prefect server is stopped by the pid the stack recorded (never by name);
the deployment's command is started as a process worker starts it (the worker's environment from
``stack.worker.worker_env``, the deployment's job env, ``PREFECT__FLOW_RUN_ID``, a working directory
without the code); the server is started again after ``OUTAGE_S``. Every wait has a deadline.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from models.core.names import PREPROCESS_DEPLOYMENT
from stack.control import start_stack
from stack.embedded import StackEnv
from stack.processes import read_pid, stop_record
from stack.worker import worker_env
from tests.orchestration.e2e import Deployed, clean_env, deploy_project, upload_sample

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUCKET = "to-bikes-engine-e2e"
OUTAGE_S = 15  # from the flow-run process's start to the server's restart
FLOW_RUN_DEADLINE_S = 900  # the restart, the code pull and a one-month preprocess on a loaded machine


@pytest.fixture(scope="module")
def deployed_only(module_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    """Blocks saved and the deployments registered, the 2025 sample on S3; no worker polls."""
    env = clean_env(module_stack, TO_BIKES_BUCKET=BUCKET)
    upload_sample(module_stack, tmp_path_factory.mktemp("engine-sample"), bucket=BUCKET, years=("2025",))
    deploy_project(env)
    return Deployed(env=env, stack=module_stack, sha="")


def pending_flow_run(api_url: str) -> tuple[Any, Any]:
    """A preprocess run of 2025-01 from its deployment, Pending as a worker leaves it; (run, deployment)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.states import Pending

    with SyncPrefectClient(api_url) as client:
        deployment = client.read_deployment_by_name(PREPROCESS_DEPLOYMENT)
        run = client.create_flow_run_from_deployment(deployment.id, parameters={"year": 2025, "month": 1})
        accepted = client.set_flow_run_state(run.id, Pending())
    assert accepted.state is not None and accepted.state.is_pending(), accepted
    return run, deployment


def flow_run_env(deployed: Deployed, deployment: Any, flow_run_id: Any) -> dict[str, str]:
    """What a process worker started with ``deployed.env`` gives the flow-run process: its own
    environment (``worker_env``), the deployment's job env on top, then the run's id."""
    with mock.patch.dict(os.environ, deployed.env, clear=True):
        env = worker_env(deployed.stack.settings())
    env |= {name: str(value) for name, value in deployment.job_variables["env"].items()}
    env |= {
        "PREFECT__FLOW_RUN_ID": str(flow_run_id),
        "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false",
    }
    return env


@pytest.fixture
def server_restarted(deployed_only: Deployed) -> Iterator[StackEnv]:
    """The stack; its Prefect server is started again on the way out, whatever the test did."""
    try:
        yield deployed_only.stack
    finally:
        start_stack(deployed_only.stack.settings(), ("prefect",), die_with_parent=True)


def test_a_flow_run_started_while_the_server_is_down_completes_once_it_is_back(
    deployed_only: Deployed, server_restarted: StackEnv, tmp_path: Path
) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    api = deployed_only.env["PREFECT_API_URL"]
    run, deployment = pending_flow_run(api)
    command = shlex.split(deployment.job_variables["command"])
    env = flow_run_env(deployed_only, deployment, run.id)
    record = read_pid(server_restarted.state_dir, "prefect")
    assert record is not None and stop_record("prefect", record)
    workdir, log = tmp_path / "flow-run", tmp_path / "flow-run.log"
    workdir.mkdir()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(OUTAGE_S)
        start_stack(server_restarted.settings(), ("prefect",), die_with_parent=True)
        code = process.wait(timeout=FLOW_RUN_DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    output = log.read_text()
    with SyncPrefectClient(api) as client:
        state = client.read_flow_run(run.id).state
    assert code == 0, f"{command} exited {code}:\n{output[-6000:]}"
    assert state is not None and state.is_completed(), (state, output[-6000:])
    assert "Traceback" not in output, output[-6000:]
    assert f"the Prefect API at {api} answered after" in output, output[-6000:]  # it did wait
