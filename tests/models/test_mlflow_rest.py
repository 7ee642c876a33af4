"""Registration over MLflow's REST API (``models.registry.mlflow_rest``) against a real MLflow server.

A server of the local stack (with its S3 for artifacts) holds two trained runs. Registering again,
checking a cached run and the errors of an unreachable or refusing server must behave as through
MlflowClient, and a registration that finds its version must not import MLflow at all.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import ClassVar

import pytest
from mlflow import MlflowClient

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT
from models.registry.mlflow_rest import RestRegistry
from models.registry.register import register_model, reuse_problem
from models.training.train import train_model
from stack.embedded import StackEnv, free_ports, make_stack_env, running_stack
from tests.models.test_train_data import build_trips, write_trips

pytestmark = [pytest.mark.integration]

NAME = "rest-test"
SERVICES = ("s3", "mlflow")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """An MLflow server (artifacts on the stack's S3) on a free port."""
    env = make_stack_env(tmp_path_factory.mktemp("rest-stack"), SERVICES)
    with running_stack(env, SERVICES):
        yield env


@pytest.fixture(scope="module")
def registered(mlflow_server: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Two runs of the same data, the first registered (and champion) through the REST client."""
    uri = mlflow_server["MLFLOW_TRACKING_URI"]
    workdir = tmp_path_factory.mktemp("rest")
    features = write_trips(workdir / "trips.parquet", build_trips(rows=3000, seed=9))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        runs = [
            train_model(features, tracking_uri=uri, experiment="rest", model_name=NAME, max_evals=1)
            for _ in range(2)
        ]
        first = register_model(runs[0].run_id, name=NAME, tracking_uri=uri)
    return SimpleNamespace(uri=uri, runs=runs, first=first)


def register_in_fresh_process(uri: str, run_id: str) -> dict:
    """``register_model`` in a new interpreter: its result and whether MLflow got imported."""
    code = (
        "import json, sys\n"
        "from dataclasses import asdict\n"
        "from models.registry.register import register_model\n"
        f"found = asdict(register_model({run_id!r}, name={NAME!r}, tracking_uri={uri!r}))\n"
        "print(json.dumps({**found, 'mlflow_imported': 'mlflow' in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_registering_again_over_rest_never_imports_mlflow(registered):
    again = register_in_fresh_process(registered.uri, registered.runs[0].run_id)
    assert again["mlflow_imported"] is False
    assert (again["version"], again["promoted"], again["champion_version"]) == ("1", True, "1")
    client = MlflowClient(registered.uri)
    assert set(client.get_model_version(NAME, "1").aliases) == {"challenger", "champion"}
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 1


def test_registering_again_writes_only_what_moved(registered, monkeypatch):
    calls, real_call = [], RestRegistry.call

    def recording(self, method, endpoint, payload):
        calls.append((method, endpoint, payload.get("alias") or payload.get("key")))
        return real_call(self, method, endpoint, payload)

    monkeypatch.setattr(RestRegistry, "call", recording)
    register_model(registered.runs[0].run_id, name=NAME, tracking_uri=registered.uri)  # the gate's reason
    calls.clear()
    register_model(registered.runs[0].run_id, name=NAME, tracking_uri=registered.uri)
    assert [call for call in calls if call[0] == "POST"] == []
    MlflowClient(registered.uri).set_model_version_tag(NAME, "1", "gate.reason", "edited")
    calls.clear()
    register_model(registered.runs[0].run_id, name=NAME, tracking_uri=registered.uri)
    writes = [call for call in calls if call[0] == "POST"]
    assert writes == [("POST", "model-versions/set-tag", "gate.reason")]


def test_rest_and_mlflow_client_read_the_same_run_and_versions(registered):
    run_id = registered.runs[0].run_id
    rest, client = RestRegistry(registered.uri), MlflowClient(registered.uri)
    assert rest.get_run(run_id).data.tags == client.get_run(run_id).data.tags
    assert rest.get_run(run_id).data.metrics == client.get_run(run_id).data.metrics
    found = rest.search_model_versions(f"name = '{NAME}' and run_id = '{run_id}'")
    assert [(v.version, v.run_id, v.status) for v in found] == [("1", run_id, "READY")]
    assert rest.get_model_version_by_alias(NAME, "champion").version == "1"


def test_a_cached_run_is_checked_over_rest_and_a_deleted_one_is_detected(registered):
    first, second = (run.run_id for run in registered.runs)
    assert reuse_problem(first, name=NAME, tracking_uri=registered.uri) is None  # the champion
    assert reuse_problem(second, name=NAME, tracking_uri=registered.uri) == (
        "the champion is now version 1, the run scored none"
    )
    missing = reuse_problem("0" * 32, name=NAME, tracking_uri=registered.uri)
    assert missing == f"run {'0' * 32} is no longer in the tracking store"
    MlflowClient(registered.uri).delete_run(second)
    assert reuse_problem(second, name=NAME, tracking_uri=registered.uri) == f"run {second} was deleted"


def test_an_unreachable_server_is_one_sentence_with_the_password_masked():
    dead = f"http://someone:hunter2@127.0.0.1:{free_ports(1)[0]}"
    with pytest.raises(UserError) as caught:
        reuse_problem("0" * 32, name=NAME, tracking_uri=dead)
    message = str(caught.value)
    assert "unreachable ([Errno 111] Connection refused)" in message and "someone:***@127.0.0.1" in message
    assert "hunter2" not in message and "\n" not in message


class RefusingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request 401 like an auth proxy, and remembers the Authorization headers."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        RefusingHandler.seen.append(self.headers.get("Authorization"))
        body = json.dumps({"error_code": "UNAUTHENTICATED", "message": "You are not\nauthenticated."})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    RefusingHandler.seen.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_request_is_one_sentence_and_mlflow_credentials_are_sent(refusing_server, monkeypatch):
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.mlflow/credentials
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")
    with pytest.raises(UserError) as caught:
        register_model("0" * 32, name=NAME, tracking_uri=refusing_server)
    message = str(caught.value)
    assert "HTTP 401" in message and "MLFLOW_TRACKING_TOKEN" in message and "\n" not in message
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
    with pytest.raises(UserError):
        reuse_problem("0" * 32, name=NAME, tracking_uri=refusing_server)
    assert RefusingHandler.seen == ["Bearer tok", "Basic YW5uOnB3"]  # base64 of ann:pw, as MLflow sends
