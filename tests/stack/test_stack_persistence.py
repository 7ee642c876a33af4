"""The running stack: loopback-only listeners, state kept across a restart, doctor, Prefect auth string."""

from __future__ import annotations

import base64
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import mlflow
import mlflow.sklearn
import psutil
import pytest
from mlflow import MlflowClient
from sklearn.dummy import DummyClassifier

from stack.control import start_stack, stop_stack
from stack.embedded import StackEnv, make_stack_env
from stack.processes import group_members, read_pid
from stack.services import SERVICE_NAMES
from tests.stack.stack_helpers import LOOPBACK_V4, listening_addresses, run_make_blocks, run_stack_cli

pytestmark = pytest.mark.integration

MODEL = "persist-probe-model"


def test_every_server_listens_on_127_0_0_1_only(own_stack: StackEnv) -> None:
    for name in SERVICE_NAMES:
        record = read_pid(own_stack.state_dir, name)
        assert record is not None and record.is_alive()
        addresses = listening_addresses(group_members(record.pid))
        assert (LOOPBACK_V4, record.port) in addresses, name
        assert {address for address, _ in addresses} == {LOOPBACK_V4}, (name, addresses)


def api(env: StackEnv, method: str, path: str, body: Any = None, auth: str | None = None) -> Any:
    """One Prefect REST call; ``auth`` is sent as HTTP basic auth, as Prefect clients do."""
    request = urllib.request.Request(
        env["PREFECT_API_URL"] + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def s3(env: StackEnv) -> Any:
    key_id, secret = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    return boto3.client(
        "s3", endpoint_url=env.endpoint_url, aws_access_key_id=key_id, aws_secret_access_key=secret
    )


def write_state(env: StackEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """An S3 object, a Prefect variable, an MLflow run with an artifact and a registered model version."""
    s3(env).put_object(Bucket=env.bucket, Key="probe/persist.txt", Body=b"kept")
    api(env, "POST", "/variables/", {"name": "persist_probe", "value": "42"})
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)  # MLflow clients need no S3 credentials (--serve-artifacts)
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    mlflow.set_experiment("persist-probe")
    artifact = tmp_path / "note.txt"
    artifact.write_text("artifact kept")
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_artifact(str(artifact))
        model = DummyClassifier().fit([[0], [1], [2]], ["member", "casual", "casual"])
        mlflow.sklearn.log_model(
            model, name="model", pip_requirements=["scikit-learn"], registered_model_name=MODEL
        )
    versions = MlflowClient().search_model_versions(f"name='{MODEL}'")
    return run.info.run_id, versions[0].version


def test_state_survives_down_and_up(
    own_stack: StackEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, version = write_state(own_stack, tmp_path, monkeypatch)
    settings = own_stack.settings()
    old_records = [read_pid(own_stack.state_dir, name) for name in SERVICE_NAMES]
    stop_stack(settings)
    assert not any(record.is_alive() for record in old_records)
    start_stack(settings, die_with_parent=True)

    kept = s3(own_stack).get_object(Bucket=own_stack.bucket, Key="probe/persist.txt")["Body"].read()
    assert kept == b"kept"
    assert api(own_stack, "GET", "/variables/name/persist_probe")["value"] == "42"
    client = MlflowClient(own_stack["MLFLOW_TRACKING_URI"])
    assert client.get_run(run_id).data.params == {"alpha": "0.5"}
    assert client.get_model_version(MODEL, version).run_id == run_id
    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="note.txt", dst_path=str(tmp_path / "download")
    )
    assert Path(downloaded).read_text() == "artifact kept"
    assert mlflow.sklearn.load_model(f"models:/{MODEL}/{version}").predict([[0]]).tolist() == ["casual"]


def test_doctor_passes_on_a_ready_stack_and_names_a_fix(own_stack: StackEnv, tmp_path: Path) -> None:
    raw = tmp_path / "sample" / "2024"
    raw.mkdir(parents=True)
    (raw / "trips.csv").write_text("trip_id\n1\n")
    assert run_stack_cli(own_stack, "sync-data", str(raw.parent)).returncode == 0
    assert run_make_blocks(own_stack).returncode == 0
    # Servers, data and blocks ready; nothing deployed and no worker: those three FAIL, each naming its fix
    # (the full pass on a deployed stack with a worker: tests/orchestration/test_loop_e2e.py).
    ready = run_stack_cli(own_stack, "doctor")
    assert ready.returncode == 3, ready.stdout
    assert ready.stdout.splitlines()[-1] == "11 passed, 3 failed"
    failed = [line for line in ready.stdout.splitlines() if line.startswith("FAIL")]
    assert [line.split("  ")[1].strip() for line in failed] == [
        "worker on pool to-bikes",
        "deployments on pool to-bikes",
        "automations",
    ], failed
    assert "fix: `make worker-start`" in failed[0] and all("fix: make deploy" in f for f in failed[1:])
    missing_pool = run_stack_cli(own_stack, "doctor", extra={"TO_BIKES_WORK_POOL": "no-such-pool"})
    assert missing_pool.returncode == 3
    failures = [line for line in missing_pool.stdout.splitlines() if line.startswith("FAIL")]
    assert "work pool no-such-pool" in failures[0] and "fix: make blocks" in failures[0], failures


@pytest.fixture(scope="module")
def auth_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """A Prefect server that requires an auth string."""
    folder = tmp_path_factory.mktemp("auth-stack")
    env = make_stack_env(folder, ("prefect",), auth_string="auth-" + secrets.token_hex(8))
    try:
        start_stack(env.settings(), ("prefect",), die_with_parent=True)
        yield env
    finally:
        stop_stack(env.settings(), ("prefect",))


def test_prefect_auth_string_is_required_and_never_shown(auth_stack: StackEnv) -> None:
    auth = auth_stack["PREFECT_API_AUTH_STRING"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(auth_stack, "POST", "/flows/filter", {})
    assert refused.value.code == 401
    assert api(auth_stack, "POST", "/flows/filter", {}, auth=auth) == []
    record = read_pid(auth_stack.state_dir, "prefect")
    for pid in group_members(record.pid):
        assert auth not in " ".join(psutil.Process(pid).cmdline())
    assert auth not in (auth_stack.state_dir / "logs" / "prefect.log").read_text(errors="replace")
    pool_line = next(
        line for line in run_stack_cli(auth_stack, "doctor").stdout.splitlines() if "work pool" in line
    )
    assert "missing -> fix: make blocks" in pool_line
    anonymous = run_stack_cli(auth_stack, "doctor", extra={"PREFECT_API_AUTH_STRING": ""}).stdout.splitlines()
    pool_line = next(line for line in anonymous if "work pool" in line)
    assert "refused (401) -> fix: set PREFECT_API_AUTH_STRING" in pool_line
