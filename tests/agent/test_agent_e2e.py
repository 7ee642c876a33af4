"""End to end in Docker: blocks, deploy, the pipeline run by the worker container, champion registered.

The same commands as the Makefile (``python -m orchestration
blocks``, ``deploy``, ``run``) against the session's
``local_stack``, with a bucket and a model name of their own; the only worker polling the pool is the
container (no project code in its image: each run pulls the bundle from S3).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from models.training.lineage import run_git
from stack.embedded import StackEnv
from tests.agent.conftest import BuiltImage, worker_env
from tests.agent.docker_helpers import clean_env, container_logs, online_workers, run_script, wait_for
from tests.orchestration.e2e import (
    PIPELINE,
    Deployed,
    PipelineRun,
    deploy_project,
    prefect_client,
    trigger_pipeline,
    upload_sample,
)

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.slow]

BUCKET = "to-bikes-docker-e2e"
MODEL = "to-bikes-member-docker"


@pytest.fixture(scope="module")
def deployed_to_container(
    local_stack: StackEnv,
    docker_engine: dict[str, str],
    agent_image: BuiltImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Deployed, dict[str, str]]]:
    """Blocks saved and deployments pushed for this bucket; a worker container polling the pool."""
    overrides = {"TO_BIKES_BUCKET": BUCKET, "TO_BIKES_MODEL_NAME": MODEL, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    env = clean_env(local_stack, overrides)
    env.pop("PYTHONPATH", None)
    upload_sample(local_stack, tmp_path_factory.mktemp("docker-sample"), bucket=BUCKET, seed=11)
    deploy_project(env)
    container_env = (
        worker_env(docker_engine, local_stack, tmp_path_factory.mktemp("docker-worker")) | overrides
    )
    started = run_script("worker.sh", "start", env=container_env)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        wait_for(lambda: online_workers(container_env), "the container worker to poll the pool")
        sha = run_git(["rev-parse", "HEAD"]) or ""
        yield Deployed(env=env, stack=local_stack, sha=sha), container_env
    finally:
        print(container_logs(Path(container_env["TO_BIKES_STATE_DIR"]) / "agent-docker.cid"))
        run_script("worker.sh", "stop", env=container_env)


@pytest.fixture(scope="module")
def container_run(deployed_to_container: tuple[Deployed, dict[str, str]]) -> PipelineRun:
    return trigger_pipeline(deployed_to_container[0])


def test_pipeline_completes_on_the_container_worker(
    deployed_to_container: tuple[Deployed, dict[str, str]], container_run: PipelineRun
) -> None:
    deployed, container_env = deployed_to_container
    with prefect_client(deployed) as client:
        flow_run = client.read_flow_run(container_run.flow_run_id)
    assert flow_run.state.is_completed()
    # The container's worker is the one that ran it (its log names the flow run it submitted).
    logs = container_logs(Path(container_env["TO_BIKES_STATE_DIR"]) / "agent-docker.cid")
    assert container_run.flow_run_id in logs, logs


def test_champion_registered_with_the_container_flow_run(
    deployed_to_container: tuple[Deployed, dict[str, str]], container_run: PipelineRun
) -> None:
    from mlflow import MlflowClient

    deployed, _ = deployed_to_container
    client = MlflowClient(deployed.env["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias(MODEL, "champion")
    tags = client.get_run(champion.run_id).data.tags
    assert tags["prefect.flow_run_id"] == container_run.flow_run_id
    assert tags["prefect.deployment"] == PIPELINE
    assert tags["git.commit"] == deployed.sha
