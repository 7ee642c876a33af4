"""Crashes and outages of the pipeline's servers: the pipeline fails clearly and loses nothing.

The MLflow tests run the model code the flows wrap against the shared ``local_stack``: the server is
stopped for real, or the fault proxy (``tests/faultproxy.py``) stands between the client and the
server and makes it vanish at a chosen request. After every failure the registry (versions and the
``champion`` alias) must be exactly as before, and a rerun must finish without a duplicate version.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pytest
from mlflow import MlflowClient

from models import storage
from models.errors import UserError
from models.register import register_model
from models.train import train_model
from stack.control import start_stack
from stack.embedded import StackEnv
from stack.processes import read_pid, stop_record
from tests.faultproxy import FaultProxy, FaultRule
from tests.models.test_train_data import build_trips, write_trips

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "reliability-model"
OPTIONS = {"experiment": "reliability", "model_name": MODEL, "max_evals": 1}
WAIT_S = 300


@pytest.fixture
def quick_mlflow_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's client retries 7 times with backoff (minutes against a dead server); 2 quick ones here."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


@pytest.fixture(scope="module")
def features_uri(local_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Synthetic processed trips (three months) on the stack's S3."""
    settings = local_stack.settings()
    local = write_trips(tmp_path_factory.mktemp("reliability") / "trips.parquet", build_trips(rows=4000))
    uri = settings.s3_uri(settings.processed_prefix, f"reliability-{uuid.uuid4().hex[:8]}", "trips.parquet")
    storage.write_file_atomic(local, uri, settings)
    return uri


@pytest.fixture(scope="module")
def champion(local_stack: StackEnv, features_uri: str) -> str:
    """A first version, registered and promoted: the champion every failure below must leave alone."""
    tracking = local_stack["MLFLOW_TRACKING_URI"]
    result = train_model(features_uri, tracking_uri=tracking, settings=local_stack.settings(), **OPTIONS)
    registration = register_model(result.run_id, name=MODEL, tracking_uri=tracking)
    assert registration.promoted and registration.champion_version == registration.version
    return registration.version


def registry_state(env: StackEnv) -> dict[str, Any]:
    """Every version (number, run, status) and every alias of the model."""
    client = MlflowClient(env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])
    versions = client.search_model_versions(f"name = '{MODEL}'")
    return {
        "versions": sorted((int(v.version), v.run_id, v.status) for v in versions),
        "aliases": dict(client.get_registered_model(MODEL).aliases),
    }


@pytest.fixture
def mlflow_proxy(local_stack: StackEnv) -> Iterator[FaultProxy]:
    """The fault proxy in front of the stack's MLflow server."""
    with FaultProxy(local_stack["MLFLOW_TRACKING_URI"], lifetime_s=900) as proxy:
        yield proxy


def cut_after(proxy: FaultProxy, method: str, path: str, rule: FaultRule) -> threading.Thread:
    """From the first request matching ``method``/``path`` on, apply ``rule`` (the server "goes away")."""

    def watch() -> None:
        if proxy.wait_for(method, path, WAIT_S) is not None:
            proxy.set_rules(rule)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def assert_one_sentence(message: str, names: str) -> None:
    assert names in message and "\n" not in message, message


def assert_user_error(exc: BaseException, names: str) -> None:
    """The failure a user sees: a ``UserError`` (no traceback at the CLI) naming the server."""
    assert isinstance(exc, UserError), f"{type(exc).__name__} instead of a UserError: {str(exc)[:300]}"
    assert_one_sentence(str(exc), names)


@pytest.mark.usefixtures("quick_mlflow_retries")
def test_mlflow_down_before_training_fails_clearly_and_keeps_the_registry(
    local_stack: StackEnv, features_uri: str, champion: str
) -> None:
    before = registry_state(local_stack)
    settings = local_stack.settings()
    record = read_pid(local_stack.state_dir, "mlflow")
    assert record is not None and stop_record("mlflow", record)
    try:
        with pytest.raises(UserError) as caught:
            train_model(
                features_uri, tracking_uri=local_stack["MLFLOW_TRACKING_URI"], settings=settings, **OPTIONS
            )
        assert_one_sentence(str(caught.value), local_stack["MLFLOW_TRACKING_URI"])
    finally:
        start_stack(settings, ("mlflow",), die_with_parent=True)
    assert registry_state(local_stack) == before
    assert before["aliases"]["champion"] == champion


@pytest.mark.usefixtures("quick_mlflow_retries")
def test_mlflow_lost_during_training_fails_clearly_and_keeps_the_registry(
    local_stack: StackEnv, features_uri: str, champion: str, mlflow_proxy: FaultProxy
) -> None:
    before = registry_state(local_stack)
    watcher = cut_after(mlflow_proxy, "POST", r"/runs/create", FaultRule("reset", count=None, path=r"/api/"))
    with pytest.raises(Exception) as caught:  # the type is asserted last
        train_model(features_uri, tracking_uri=mlflow_proxy.url, settings=local_stack.settings(), **OPTIONS)
    watcher.join(timeout=1)
    assert mlflow_proxy.faults(), "the server never went away: the test tested nothing"
    assert registry_state(local_stack) == before
    assert_user_error(caught.value, mlflow_proxy.url)


@pytest.mark.usefixtures("quick_mlflow_retries")
def test_mlflow_lost_during_registration_keeps_the_champion_and_a_rerun_adds_one_version(
    local_stack: StackEnv, features_uri: str, champion: str, mlflow_proxy: FaultProxy
) -> None:
    tracking = local_stack["MLFLOW_TRACKING_URI"]
    result = train_model(features_uri, tracking_uri=tracking, settings=local_stack.settings(), **OPTIONS)
    before = registry_state(local_stack)
    watcher = cut_after(
        mlflow_proxy, "POST", r"/model-versions/create", FaultRule("reset", count=None, path=r"/api/")
    )
    with pytest.raises(Exception) as caught:  # the type is asserted last
        register_model(result.run_id, name=MODEL, tracking_uri=mlflow_proxy.url, margin=0.0)
    watcher.join(timeout=1)
    assert mlflow_proxy.faults(), "the server never went away: the test tested nothing"
    during = registry_state(local_stack)
    assert during["aliases"]["champion"] == before["aliases"]["champion"] == champion
    mlflow_proxy.set_rules()
    rerun = register_model(result.run_id, name=MODEL, tracking_uri=mlflow_proxy.url, margin=0.0)
    after = registry_state(local_stack)
    new = [v for v in after["versions"] if v not in before["versions"]]
    assert [(v[1], v[2]) for v in new] == [(result.run_id, "READY")], after
    assert rerun.version == str(new[0][0])
    assert_user_error(caught.value, mlflow_proxy.url)


def test_artifact_upload_survives_transient_faults(
    local_stack: StackEnv, features_uri: str, champion: str, mlflow_proxy: FaultProxy, tmp_path: Path
) -> None:
    rules = [
        FaultRule("503", count=2, methods={"PUT"}, path=r"/mlflow-artifacts/"),
        FaultRule("reset", count=1, methods={"PUT"}, path=r"/mlflow-artifacts/"),
        FaultRule("503", count=1, methods={"POST"}, path=r"/runs/log-batch"),
    ]
    mlflow_proxy.set_rules(*rules)
    result = train_model(
        features_uri, tracking_uri=mlflow_proxy.url, settings=local_stack.settings(), **OPTIONS
    )
    assert [rule.hits for rule in rules] == [2, 1, 1]
    client = MlflowClient(local_stack["MLFLOW_TRACKING_URI"], registry_uri=local_stack["MLFLOW_TRACKING_URI"])
    model_uri = client.get_run(result.run_id).data.tags["model.uri"]
    local = Path(client.download_artifacts(result.run_id, "", str(tmp_path / "run")))
    assert any(local.rglob("*.png")) or any(local.rglob("*.json")), sorted(local.rglob("*"))
    mlflow.set_tracking_uri(local_stack["MLFLOW_TRACKING_URI"])
    assert hasattr(mlflow.sklearn.load_model(model_uri), "predict_proba")
