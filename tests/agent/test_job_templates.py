"""The Kubernetes, ECS and Docker job templates of agent/work-pools render, with the workers' own code.

Each template is filled with a deployment of prefect.yaml (its ``{{ $VAR }}`` placeholders resolved as
``prefect deploy`` does) by the worker's job configuration class (``from_template_and_values`` then
``prepare_for_flow_run``), as a worker would for a flow run; the ECS worker's task definition and
run-task request builders then make the AWS payloads. The worker runs with Prefect Cloud settings
(an API key) to show where the key goes: never into the manifests as a value. No cluster is needed.

Three of the workers' steps have no public entry point short of a cluster (``run`` creates the Job or
the ECS task): ``KubernetesWorker._replace_api_key_with_secret``, ``ECSWorker._prepare_task_definition``
and ``ECSWorker._prepare_task_run_request``. They are listed in README "Private APIs we use", and
``private_worker_method`` fails with that name when an upgrade renames one or changes its parameters.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import secrets
import uuid
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
import yaml
from prefect.client.schemas.objects import Flow, FlowRun
from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL, temporary_settings
from prefect.utilities.templating import apply_values

from orchestration.deploy.pools import TEMPLATES, base_job_template, select_deployments
from orchestration.flows.api_loss import API_OUTAGE_S
from stack.prefect_yaml import read_spec

pytestmark = pytest.mark.unit

SHA = "0123456789abcdef0123456789abcdef01234567"
IMAGE = "123456789012.dkr.ecr.ca-central-1.amazonaws.com/to-bikes-agent"
CLOUD_URL = f"https://api.prefect.cloud/api/accounts/{uuid.uuid4()}/workspaces/{uuid.uuid4()}"
ENGINE = ["to-bikes-engine"]  # agent/bin, in the image's /usr/local/bin


def deployment_values(pool_type: str, flow: str = "pipeline_flow") -> dict[str, Any]:
    """The job variables of one deployment of prefect.yaml, resolved as ``prefect deploy`` does."""
    spec = select_deployments(pool_type, read_spec())
    entry = next(d for d in spec["deployments"] if d["entrypoint"].endswith(f":{flow}"))
    env = {
        "TO_BIKES_GIT_SHA": SHA,
        "TO_BIKES_GIT_DIRTY": "false",
        "TO_BIKES_AGENT_IMAGE": IMAGE,
        "TO_BIKES_IMAGE_TAG": SHA[:12],
        "TO_BIKES_API_OUTAGE_S": str(API_OUTAGE_S),
    }
    with mock.patch.dict(os.environ, env):  # Prefect reads {{ $VAR }} from the process environment
        return apply_values(entry, os.environ, remove_notset=False)["work_pool"]["job_variables"]


def render(config_class: type, pool_type: str, api_key: str) -> Any:
    """The job configuration a worker of ``pool_type`` prepares for one flow run of the pipeline."""
    flow = Flow(id=uuid.uuid4(), name="to-bikes-pipeline")
    flow_run = FlowRun(id=uuid.uuid4(), name="brave-otter", flow_id=flow.id)
    with temporary_settings({PREFECT_API_URL: CLOUD_URL, PREFECT_API_KEY: api_key}):
        config = asyncio.run(
            config_class.from_template_and_values(base_job_template(pool_type), deployment_values(pool_type))
        )
        config.prepare_for_flow_run(flow_run, flow=flow)
    return config, flow_run


PRIVATE_WORKER_METHODS = {
    ("prefect_kubernetes.worker", "KubernetesWorker", "_replace_api_key_with_secret"): (
        "configuration",
        "client",
        "secret_name",
        "secret_key",
    ),
    ("prefect_aws.workers.ecs_worker", "ECSWorker", "_prepare_task_definition"): (
        "configuration",
        "region",
        "flow_run",
    ),
    ("prefect_aws.workers.ecs_worker", "ECSWorker", "_prepare_task_run_request"): (
        "configuration",
        "task_definition",
        "task_definition_arn",
        "new_task_definition_registered",
    ),
}


def private_worker_method(worker: Any, name: str) -> Callable[..., Any]:
    """``worker.name``, a private worker step listed in README "Private APIs we use", checked first."""
    worker_class = type(worker)
    key = (worker_class.__module__, worker_class.__name__, name)
    where = f"{worker_class.__module__}.{worker_class.__name__}.{name}"
    assert key in PRIVATE_WORKER_METHODS, f"{where} is not listed in README 'Private APIs we use': add it"
    method = getattr(worker, name, None)
    assert method is not None, (
        f"{where} is gone (a worker upgrade): see README 'Private APIs we use' and move to its replacement"
    )
    parameters = tuple(inspect.signature(method).parameters)
    assert parameters == PRIVATE_WORKER_METHODS[key], (
        f"{where} now takes {parameters}: see README 'Private APIs we use' and adapt this test"
    )
    return method


def env_list(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in entries}


def test_every_template_keeps_the_workers_own_job_configuration() -> None:
    """The repo's templates change variable defaults only, so a worker upgrade shows up here."""
    from prefect_aws.workers.ecs_worker import ECSWorker
    from prefect_docker.worker import DockerWorker
    from prefect_kubernetes.worker import KubernetesWorker

    for pool_type, worker in (("docker", DockerWorker), ("kubernetes", KubernetesWorker), ("ecs", ECSWorker)):
        ours = json.loads((TEMPLATES / f"{pool_type}.json").read_text())
        theirs = worker.get_default_base_job_template()
        if pool_type == "ecs":  # ours adds the tasks' subnets and security groups (awsvpc, no VPC lookup)
            del ours["job_configuration"]["task_run_request"]["networkConfiguration"]
            assert ours["variables"]["properties"].pop("subnets") and ours["variables"]["properties"].pop(
                "security_groups"
            )
        assert ours["job_configuration"] == theirs["job_configuration"], pool_type
        assert ours["variables"]["properties"].keys() == theirs["variables"]["properties"].keys(), pool_type


def test_kubernetes_job_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

    api_key = "pnu_" + secrets.token_hex(18)
    config, flow_run = render(KubernetesWorkerJobConfiguration, "kubernetes", api_key)
    # The worker's own step (PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_KEY_SECRET_NAME) puts the key
    # in a Kubernetes secret reference; with a secret name given it needs no cluster.
    worker = KubernetesWorker(work_pool_name="to-bikes-kubernetes")
    replace_api_key_with_secret = private_worker_method(worker, "_replace_api_key_with_secret")
    asyncio.run(replace_api_key_with_secret(config, None, "prefect-api-key", "value"))
    manifest = config.job_manifest
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = env_list(container["env"])
    print(yaml.safe_dump({"metadata": manifest["metadata"], "pod": pod}, sort_keys=False))
    assert manifest["kind"] == "Job" and manifest["metadata"]["namespace"] == "to-bikes"
    assert container["image"] == f"{IMAGE}:{SHA[:12]}"
    assert container["args"] == ENGINE
    assert container["resources"] == {
        "limits": {"cpu": "2", "memory": "4Gi"},
        "requests": {"cpu": "1", "memory": "2Gi"},
    }
    assert pod["serviceAccountName"] == "to-bikes-flow-runner"
    assert env["PREFECT__FLOW_RUN_ID"] == str(flow_run.id)
    assert env["PREFECT_API_URL"] == CLOUD_URL
    assert env["TO_BIKES_GIT_COMMIT"] == SHA
    assert env["PREFECT_HOME"] == "/home/agent/.prefect"
    assert env["PREFECT_API_KEY"] == {"secretKeyRef": {"name": "prefect-api-key", "key": "value"}}
    assert api_key not in json.dumps(manifest)
    assert "AWS_SECRET_ACCESS_KEY" not in env


def test_ecs_task_definition_and_run_request() -> None:
    from prefect_aws.workers.ecs_worker import ECSJobConfiguration, ECSWorker

    api_key = "pnu_" + secrets.token_hex(18)
    config, flow_run = render(ECSJobConfiguration, "ecs", api_key)
    worker = ECSWorker(work_pool_name="to-bikes-ecs")
    prepare_task_definition = private_worker_method(worker, "_prepare_task_definition")
    task_definition = prepare_task_definition(config, region="ca-central-1", flow_run=flow_run)
    arn = "arn:aws:ecs:ca-central-1:123456789012:task-definition/to-bikes-flow-run:1"
    request = private_worker_method(worker, "_prepare_task_run_request")(config, task_definition, arn, True)
    print(json.dumps({"taskDefinition": task_definition, "runTask": request}, indent=1))
    container = task_definition["containerDefinitions"][0]
    assert container["image"] == f"{IMAGE}:{SHA[:12]}" and container["name"] == "prefect"
    assert container["secrets"] == [
        {"name": "PREFECT_API_KEY", "valueFrom": config.prefect_api_key_secret_arn},
    ]
    assert task_definition["family"] == "to-bikes-flow-run"
    assert (task_definition["cpu"], task_definition["memory"]) == ("1024", "4096")
    assert task_definition["executionRoleArn"].endswith(":role/to-bikes-ecs-execution")
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    overrides = request["overrides"]
    assert overrides["taskRoleArn"].endswith(":role/to-bikes-flow-run")
    assert request["cluster"] == "to-bikes" and request["launchType"] == "FARGATE"
    assert request["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    override = overrides["containerOverrides"][0]
    assert override["name"] == "prefect" and override["command"] == ENGINE
    env = env_list(override["environment"])
    assert env["PREFECT__FLOW_RUN_ID"] == str(flow_run.id)
    assert env["PREFECT_API_URL"] == CLOUD_URL and env["TO_BIKES_GIT_COMMIT"] == SHA
    assert "PREFECT_API_KEY" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert api_key not in json.dumps([task_definition, request])


def test_docker_container_settings() -> None:
    from prefect_docker.worker import DockerWorkerJobConfiguration

    api_key = "pnu_" + secrets.token_hex(18)
    config, flow_run = render(DockerWorkerJobConfiguration, "docker", api_key)
    assert config.image == f"{IMAGE}:{SHA[:12]}"
    assert config.command == "to-bikes-engine"
    assert config.env["TO_BIKES_API_WAIT_SECONDS"] == str(API_OUTAGE_S)  # how long it waits for the API
    assert config.network_mode == "host" and config.auto_remove is True
    assert config.labels["io.prefect.flow-run-id"] == str(flow_run.id)
    assert config.env["TO_BIKES_GIT_COMMIT"] == SHA and config.env["PREFECT_HOME"] == "/home/agent/.prefect"
    # Prefect's docker worker passes its own API key to the container (the flow run must reach the
    # API); nothing else secret: AWS credentials come from the block at run time.
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(config.env)
