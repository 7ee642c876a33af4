"""End to end on the docker work pool: one container per flow run, from the image of the deployed commit.

``TO_BIKES_WORK_POOL_TYPE=docker``: ``make blocks deploy`` creates the pool to-bikes-docker with
agent/work-pools/docker.json and the deployments on it, ``make agent``'s background worker is
prefect-docker's worker on the host, and each flow run is a container of the test image tagged with
the commit's short sha (built by ``agent_image``), on the host network, removed when it ends. While
the pipeline runs, every container the worker starts is inspected; none may carry a secret.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest

from orchestration.deploy.pools import image_tag
from stack.embedded import StackEnv
from tests.agent.conftest import TEST_IMAGE, BuiltImage
from tests.agent.docker_helpers import clean_env, docker, wait_for
from tests.orchestration.e2e import (
    PIPELINE,
    Deployed,
    PipelineRun,
    deploy_project,
    prefect_client,
    trigger_pipeline,
    upload_sample,
    worker_running,
)

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.slow]

BUCKET = "to-bikes-docker-pool-e2e"
MODEL = "to-bikes-member-docker-pool"
FLOW_RUN_LABEL = "io.prefect.flow-run-id"
POLL_S = 0.5


class ContainerWatch(threading.Thread):
    """Inspects every container labelled with a flow run id while it exists (until ``stop``)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.inspected: dict[str, dict] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(POLL_S):
            ids = docker(
                "ps", "-q", "--no-trunc", "--filter", f"label={FLOW_RUN_LABEL}", check=False
            ).stdout.split()
            for cid in ids:
                if cid not in self.inspected:
                    found = docker("container", "inspect", cid, check=False)
                    if found.returncode == 0:
                        self.inspected[cid] = json.loads(found.stdout)[0]

    def stop(self) -> dict[str, dict]:
        self.done.set()
        self.join()
        return self.inspected


@pytest.fixture(scope="module")
def docker_pool_run(
    local_stack: StackEnv, agent_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployed, PipelineRun, dict[str, dict]]]:
    """Deployed on the docker pool, a host docker worker, one pipeline run, the containers it started."""
    overrides = {
        "TO_BIKES_BUCKET": BUCKET,
        "TO_BIKES_MODEL_NAME": MODEL,
        "TO_BIKES_WORK_POOL_TYPE": "docker",
        "TO_BIKES_AGENT_IMAGE": TEST_IMAGE,
        "TO_BIKES_STATE_DIR": str(tmp_path_factory.mktemp("docker-pool-state")),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    env = clean_env(local_stack, overrides)
    env.pop("PYTHONPATH", None)
    upload_sample(local_stack, tmp_path_factory.mktemp("docker-pool-sample"), bucket=BUCKET, seed=13)
    deploy_project(env)
    with worker_running(env, local_stack) as deployed:
        watch = ContainerWatch()
        watch.start()
        try:
            run = trigger_pipeline(deployed)
        finally:
            inspected = watch.stop()
        yield deployed, run, inspected


def test_the_pipeline_completes_in_a_container_of_the_commit_image(
    docker_pool_run: tuple[Deployed, PipelineRun, dict[str, dict]],
) -> None:
    deployed, run, inspected = docker_pool_run
    with prefect_client(deployed) as client:
        flow_run = client.read_flow_run(run.flow_run_id)
        deployment = client.read_deployment(flow_run.deployment_id)
    assert flow_run.state.is_completed()
    assert deployment.work_pool_name == "to-bikes-docker"
    ours = [c for c in inspected.values() if c["Config"]["Labels"].get(FLOW_RUN_LABEL) == run.flow_run_id]
    assert len(ours) == 1, sorted(c["Config"]["Labels"].get(FLOW_RUN_LABEL) for c in inspected.values())
    container = ours[0]
    # The image of the deployed commit, under the tag make agent-image gave it (dirty: the work tree's).
    assert container["Config"]["Image"] == deployment.job_variables["image"]
    assert container["Config"]["Image"] in {
        f"{TEST_IMAGE}:{image_tag(deployed.sha, d)}" for d in (False, True)
    }
    assert container["HostConfig"]["NetworkMode"] == "host"
    assert container["HostConfig"]["AutoRemove"] is True
    assert container["Config"]["Healthcheck"]["Test"] == ["NONE"]  # the image's worker check does not apply
    env = dict(item.split("=", 1) for item in container["Config"]["Env"])
    assert env["PREFECT__FLOW_RUN_ID"] == run.flow_run_id
    assert env["TO_BIKES_GIT_COMMIT"] == deployed.sha
    print(
        f"flow run {run.flow_run_id}: {flow_run.state.name}; "
        f"container {container['Name']} {container['Id'][:12]} {container['Config']['Image']}"
    )


def test_the_wait_from_scheduled_to_running_is_reported(
    docker_pool_run: tuple[Deployed, PipelineRun, dict[str, dict]],
) -> None:
    """From the run's state history: worker poll (Scheduled -> Pending), container start to Running.

    Pending -> Running is the container's wait with the image present: create and start it, import
    Prefect's engine, pull and unpack the code bundle, import the flow. Printed (pytest -rP shows it),
    never asserted against a wall-clock limit.
    """
    deployed, run, _ = docker_pool_run
    with prefect_client(deployed) as client:
        states = client.read_flow_run_states(uuid.UUID(run.flow_run_id))
    first: dict[str, object] = {}
    for state in sorted(states, key=lambda s: s.timestamp):
        first.setdefault(state.type.value, state.timestamp)
    scheduled, pending, running = (first[name] for name in ("SCHEDULED", "PENDING", "RUNNING"))
    assert scheduled <= pending <= running
    poll, start = (pending - scheduled).total_seconds(), (running - pending).total_seconds()
    print(
        f"flow run {run.flow_run_id}: scheduled -> running {poll + start:.1f} s (scheduled -> pending "
        f"{poll:.1f} s: worker poll; pending -> running {start:.1f} s: container, engine, pull, flow import)"
    )


def test_the_container_is_gone_and_held_no_secret(
    docker_pool_run: tuple[Deployed, PipelineRun, dict[str, dict]], agent_image: BuiltImage
) -> None:
    deployed, run, inspected = docker_pool_run
    assert inspected
    # auto_remove: the engine removes each container once it has exited (just after the run's final state).
    for cid in inspected:
        wait_for(
            lambda cid=cid: docker("container", "inspect", cid, check=False).returncode != 0,
            f"{cid[:12]} gone",
        )
    left = docker("ps", "-a", "-q", "--filter", f"label={FLOW_RUN_LABEL}={run.flow_run_id}").stdout.strip()
    assert left == ""
    # The AWS key pair stays in the block to-bikes-aws, which the flow run reads at run time.
    secrets = (deployed.stack["AWS_SECRET_ACCESS_KEY"], *agent_image.canaries)
    dump = json.dumps(list(inspected.values()))
    assert [s for s in secrets if s in dump] == []
    credentials = ("AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=")
    env = [name for c in inspected.values() for name in c["Config"]["Env"]]
    assert not [name for name in env if name.startswith(credentials)]


def test_the_champion_carries_the_flow_run_id(
    docker_pool_run: tuple[Deployed, PipelineRun, dict[str, dict]],
) -> None:
    from mlflow import MlflowClient

    deployed, run, _ = docker_pool_run
    client = MlflowClient(deployed.env["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias(MODEL, "champion")
    tags = client.get_run(champion.run_id).data.tags
    assert tags["prefect.flow_run_id"] == run.flow_run_id
    assert tags["prefect.deployment"] == PIPELINE
    assert tags["git.commit"] == deployed.sha
    print(f"champion {MODEL} v{champion.version} run {champion.run_id} prefect.flow_run_id={run.flow_run_id}")
