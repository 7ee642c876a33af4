"""The AWS secret never leaves the places it must be: not in the code bundle, logs, MLflow, errors.

Every test plants the stack's real secret where a mistake would spread it (a ``.env`` in the project,
the process environment, DEBUG logging of every library) and then scans what others can read:
the code bundle ``push_code_bundle`` uploads with our ``.prefectignore``, log records at DEBUG, the servers'
log files, MLflow params, tags and artifacts, registry tags, and the text of every exception.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import subprocess
import sys
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from mlflow import MlflowClient

from models.core import storage
from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT
from models.registry.register import register_model
from models.training.train import train_model
from stack.embedded import StackEnv, free_ports, make_stack_env, running_stack
from stack.processes import group_members, read_pid
from tests.models.training.trips import build_trips, write_trips
from tests.orchestration.e2e import (
    Deployed,
    clean_env,
    deploy_project,
    prefect_client,
    read_messages,
    run_and_subflow_ids,
    run_module,
    save_blocks,
    trigger,
    unpack_bundle,
    upload_sample,
)
from tests.stack.stack_helpers import AGENT_BIN, run_command, run_make_blocks

pytestmark = pytest.mark.integration

PLANTED = (
    ".env",
    ".env.local",
    "agent/.env",
    "deploy/service.pem",
    "tls.key",
    ".stack/prefect/prefect.db",
    "data/sample/2025/secret.csv",
    "mlruns/0/meta.yaml",
    ".venv/lib/site.py",
    "stack/node_modules/s3rver/index.js",
    "bench/work/notes.txt",
    ".git/config",
)
LOGGERS = ("", "botocore", "boto3", "s3transfer", "urllib3", "mlflow", "models", "prefect")


def s3(env: StackEnv) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env.endpoint_url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def copy_project(target: Path) -> list[str]:
    """The tracked files of the repository (what a clean checkout holds) copied to ``target``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    files = [name for name in listed.split("\0") if name and (PROJECT_ROOT / name).is_file()]
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, target / name)
    return files


def read_bundle(env: StackEnv, folder: str, bucket: str | None = None) -> dict[str, bytes]:
    """Every object under ``folder/`` (of ``bucket``, default the stack's): relative key -> bytes.

    A code bundle (``.../bundle.tar.gz``) stands for the files it holds, under the bundle's folder.
    """
    client, found, bucket = s3(env), {}, bucket or env.bucket
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder + "/"):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            relative = item["Key"][len(folder) + 1 :]
            if relative.endswith("bundle.tar.gz"):
                where = relative.removesuffix("bundle.tar.gz")
                found |= {where + name: data for name, data in unpack_bundle(body).items()}
            else:
                found[relative] = body
    return found


def test_prefectignore_keeps_env_and_secret_files_out_of_the_code_bundle(
    s3_server: StackEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.deploy.bundle import push_code_bundle

    secret = s3_server["AWS_SECRET_ACCESS_KEY"]
    project = tmp_path / "project"
    tracked = copy_project(project)
    for name in PLANTED:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(f"AWS_SECRET_ACCESS_KEY={secret}\n")
    monkeypatch.chdir(project)
    folder = f"flows/secrets-{uuid.uuid4().hex[:8]}"
    push_code_bundle(
        bucket=s3_server.bucket,
        folder=folder,
        credentials={"aws_access_key_id": s3_server["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": secret},
        client_parameters={"endpoint_url": s3_server.endpoint_url},
    )
    bundle = read_bundle(s3_server, folder)
    assert "models/data/preprocess.py" in bundle and "models/core/settings.py" in bundle
    assert ".env.example" in bundle or ".env.example" not in tracked
    assert sorted(set(PLANTED) & set(bundle)) == []
    assert [name for name in bundle if "node_modules/" in name] == []
    assert [name for name, body in bundle.items() if secret.encode() in body] == []


@contextlib.contextmanager
def captured_debug_logs() -> Iterator[io.StringIO]:
    """Every record of the project's and its libraries' loggers, at DEBUG, into one buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield buffer
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


def exception_text(exc: BaseException) -> str:
    """The message and the whole chained traceback, as a log handler or a Prefect state would show it."""
    return "".join(traceback.format_exception(exc))


def train_and_register(env: StackEnv, tmp_path: Path) -> tuple[str, str]:
    """One training run and its registration against the stack, features read from S3."""
    settings = env.settings()
    local = write_trips(tmp_path / "trips.parquet", build_trips(rows=4000))
    uri = settings.s3_uri(settings.processed_prefix, f"secrets-{uuid.uuid4().hex[:8]}", "trips.parquet")
    storage.write_file_atomic(local, uri, settings)
    tracking = env["MLFLOW_TRACKING_URI"]
    result = train_model(
        uri,
        tracking_uri=tracking,
        experiment="secrets",
        model_name="secrets-model",
        max_evals=1,
        settings=settings,
    )
    registration = register_model(result.run_id, name="secrets-model", tracking_uri=tracking)
    return result.run_id, registration.version


def mlflow_texts(env: StackEnv, run_id: str, version: str, tmp_path: Path) -> dict[str, str]:
    """What MLflow shows about the run and the version: params, tags, and every artifact's bytes."""
    client = MlflowClient(env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])
    run = client.get_run(run_id)
    texts = {"params": repr(run.data.params), "tags": repr(run.data.tags)}
    texts["version"] = repr(client.get_model_version("secrets-model", version))
    local = Path(client.download_artifacts(run_id, "", str(tmp_path / "artifacts")))
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        texts[f"artifact {path.relative_to(local)}"] = path.read_bytes().decode("latin-1")
    return texts


@pytest.mark.slow
def test_training_and_registration_leak_no_secret(
    stack_env: StackEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = stack_env["AWS_SECRET_ACCESS_KEY"]
    monkeypatch.chdir(tmp_path)
    with captured_debug_logs() as logs:
        run_id, version = train_and_register(stack_env, tmp_path)
    assert "botocore" in logs.getvalue() and "models" in logs.getvalue()  # the capture did capture
    assert secret not in logs.getvalue()
    texts = mlflow_texts(stack_env, run_id, version, tmp_path)
    assert any(name.startswith("artifact ") for name in texts)
    assert [name for name, text in texts.items() if secret in text] == []
    server_logs = {
        p.name: p.read_text(errors="replace") for p in (stack_env.state_dir / "logs").glob("*.log")
    }
    assert set(server_logs) >= {"s3.log", "mlflow.log", "prefect.log"}
    assert [name for name, text in server_logs.items() if secret in text] == []


def test_errors_name_the_place_but_never_the_secret(stack_env: StackEnv, tmp_path: Path) -> None:
    secret = stack_env["AWS_SECRET_ACCESS_KEY"]
    settings = stack_env.settings()
    assert secret not in repr(settings) and secret not in str(settings.model_dump())
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    failures = [
        lambda: storage.list_inputs("s3://no-such-bucket-for-secrets/raw/", settings),
        lambda: storage.download_file(settings.s3_uri("raw", "missing.csv"), tmp_path / "x.csv", settings),
        lambda: train_model(
            settings.s3_uri("processed", "missing.parquet"), tracking_uri=dead, settings=settings
        ),
        lambda: register_model("0" * 32, name="secrets-model", tracking_uri=dead),
    ]
    for failure in failures:
        with pytest.raises(UserError) as caught:
            failure()
        assert "\n" not in str(caught.value)
        assert secret not in exception_text(caught.value)


# --- the deployed pipeline: what Prefect, S3 and the worker keep after a real run ---------------

SECRETS_BUCKET = "to-bikes-secrets"


@pytest.fixture(scope="module")
def pipeline_run(
    local_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, str]]:
    """Blocks, deploy, worker and one completed pipeline run (2024) in a bucket of its own."""
    env = clean_env(local_stack, TO_BIKES_BUCKET=SECRETS_BUCKET)
    folder = tmp_path_factory.mktemp("secrets-sample")
    upload_sample(local_stack, folder, bucket=SECRETS_BUCKET, seed=11, years=("2024",))
    deploy_project(env)
    deployed = Deployed(env=env, stack=local_stack, sha="")
    try:
        run_module("orchestration", env, "worker", "start")
        code, output, flow_run_id = trigger(deployed, "--param", "year=2024", "--param", "max_evals=1")
        assert code == 0 and flow_run_id, output
        yield deployed, flow_run_id
    finally:
        subprocess.run(
            [sys.executable, "-m", "orchestration", "worker", "stop"],
            cwd=PROJECT_ROOT,
            env=env,
            timeout=120,
        )
        save_blocks(clean_env(local_stack))


def prefect_texts(deployed: Any, flow_run_id: str) -> dict[str, str]:
    """What the Prefect API shows: run logs, artifacts, parameters, deployments and block documents."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with prefect_client(deployed) as client:
        ids = run_and_subflow_ids(client, flow_run_id)
        runs = FlowRunFilter(id=FlowRunFilterId(any_=ids))
        return {
            "logs": "\n".join(read_messages(client, ids)),
            "artifacts": repr(
                [(a.key, a.description, a.data) for a in client.read_artifacts(flow_run_filter=runs)]
            ),
            "flow runs": repr(
                [(r.name, r.parameters, r.state) for r in client.read_flow_runs(flow_run_filter=runs)]
            ),
            "task runs": repr(client.read_task_runs(flow_run_filter=runs)),
            "deployments": repr(client.read_deployments()),
            "block documents": repr(client.read_block_documents(include_secrets=False)),
        }


def mlflow_text(deployed: Any, flow_run_id: str) -> str:
    """Params and tags of the MLflow run the flow run made (there must be exactly one)."""
    uri = deployed.env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(deployed.stack.settings().experiment)
    assert experiment is not None
    found = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`prefect.flow_run_id` = '{flow_run_id}'"
    )
    assert len(found) == 1, found
    return repr((found[0].data.params, found[0].data.tags))


@pytest.mark.e2e
@pytest.mark.slow
def test_a_deployed_pipeline_run_leaks_no_secret(pipeline_run: tuple[Any, str]) -> None:
    deployed, flow_run_id = pipeline_run
    secret = deployed.stack["AWS_SECRET_ACCESS_KEY"]
    texts = prefect_texts(deployed, flow_run_id)
    assert "pull_from_s3" in texts["logs"]
    logs = deployed.stack.state_dir / "logs"
    texts |= {f"log {p.name}": p.read_text(errors="replace") for p in logs.glob("*.log")}
    assert "log worker.log" in texts
    stored = read_bundle(deployed.stack, "flows", SECRETS_BUCKET)
    assert any(key.endswith("orchestration/flows/pipeline.py") for key in stored)
    assert not [key for key in stored if key.rsplit("/", 1)[-1] in (".env", ".env.local")]
    stored |= read_bundle(deployed.stack, "prefect-results", SECRETS_BUCKET)
    texts |= {f"s3 {key}": body.decode("latin-1") for key, body in stored.items()}
    texts["mlflow"] = mlflow_text(deployed, flow_run_id)
    assert [name for name, text in texts.items() if secret in text] == []


# --- loopback only, and the Prefect API auth string ------------------------------------------


def test_every_stack_server_listens_on_127_0_0_1_only(local_stack: StackEnv) -> None:
    from tests.stack.stack_helpers import LOOPBACK_V4, listening_addresses

    for name in ("s3", "prefect", "mlflow"):
        record = read_pid(local_stack.state_dir, name)
        assert record is not None and record.is_alive(), name
        addresses = listening_addresses(group_members(record.pid))
        assert (LOOPBACK_V4, record.port) in addresses, (name, addresses)
        assert {address for address, _ in addresses} == {LOOPBACK_V4}, (name, addresses)


@pytest.fixture(scope="module")
def auth_prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """A local Prefect server started with PREFECT_SERVER_API_AUTH_STRING (and an S3 server)."""
    env = make_stack_env(
        tmp_path_factory.mktemp("auth"), ("s3", "prefect"), auth_string="auth-" + uuid.uuid4().hex
    )
    with running_stack(env, ("s3", "prefect")):
        yield env


def test_project_commands_work_with_the_prefect_auth_string_and_fail_clearly_without(
    auth_prefect: StackEnv,
) -> None:
    auth = auth_prefect["PREFECT_API_AUTH_STRING"]
    with_auth = run_make_blocks(auth_prefect)
    assert with_auth.returncode == 0, with_auth.stdout + with_auth.stderr
    assert "AwsCredentials/to-bikes-aws: created" in with_auth.stdout
    anonymous = {k: v for k, v in auth_prefect.items() if "AUTH_STRING" not in k}
    refused = run_command([AGENT_BIN / "python", "-m", "orchestration", "blocks"], anonymous)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert "PREFECT_API_AUTH_STRING" in refused.stderr, refused.stderr[-3000:]
    shown = with_auth.stdout + with_auth.stderr + refused.stdout + refused.stderr
    shown += (auth_prefect.state_dir / "logs" / "prefect.log").read_text(errors="replace")
    assert auth not in shown and auth_prefect["AWS_SECRET_ACCESS_KEY"] not in shown
