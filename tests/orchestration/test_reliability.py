"""Crashes and outages of the pipeline's servers: the pipeline fails clearly and loses nothing.

MLflow: the model code the flows wrap runs against the shared ``local_stack`` while the server is
stopped for real, or while the fault proxy (``tests/faultproxy.py``) in front of it makes it vanish
at a chosen request. After every failure the registry (versions and the ``champion`` alias) must
be exactly as before, and a rerun must finish without a duplicate version.

Deployed pipeline (``e2e``): blocks whose S3 endpoint is a fault proxy in front of the stack's S3,
so the code push, the worker's code pull, cached results and data all pass through it. Transient
faults must be retried away; a code pull that keeps failing must end the run (Crashed) with the
cause in the worker's log; a worker SIGKILLed while publishing must leave no final Parquet behind,
and a new worker's rerun must complete with exactly one new model version; two periods at once
must both complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import psutil
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from models.core import storage
from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT
from models.registry.register import register_model
from models.training.train import train_model
from orchestration.commands.run import PIPELINE, PREPROCESS
from orchestration.commands.runs import ApiCaller, start_run, wait_final
from stack.control import start_stack
from stack.embedded import StackEnv
from stack.processes import process_start_time, read_pid, stop_record
from tests.faultproxy import FaultProxy, FaultRule
from tests.models.training.trips import build_trips, write_trips
from tests.orchestration.e2e import (
    Deployed,
    clean_env,
    deploy_project,
    ensure_worker,
    prefect_client,
    read_messages,
    s3_client,
    save_blocks,
    trigger,
    upload_sample,
    worker_running,
)

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


def run_model_cli(env: StackEnv, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m models COMMAND ARGS`` as a user runs it, with MLflow's client retries kept short."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "models", command, *args],
        cwd=PROJECT_ROOT,
        env=clean_env(env, MLFLOW_HTTP_REQUEST_TIMEOUT="30", **quick),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def assert_cli_error(done: subprocess.CompletedProcess[str], names: str) -> None:
    """Exit 2, one ``error:`` line naming ``names`` on stderr, no traceback."""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(errors) == 1 and names in errors[0], done.stderr[-3000:]


def test_mlflow_lost_during_training_fails_clearly_and_keeps_the_registry(
    local_stack: StackEnv, features_uri: str, champion: str, mlflow_proxy: FaultProxy
) -> None:
    before = registry_state(local_stack)
    watcher = cut_after(mlflow_proxy, "POST", r"/runs/create", FaultRule("reset", count=None, path=r"/api/"))
    options = ["--experiment", "reliability", "--model-name", MODEL, "--max-evals", "1"]
    done = run_model_cli(
        local_stack,
        "train",
        "--input",
        features_uri,
        "--tracking-uri",
        mlflow_proxy.url,
        *options,
    )
    watcher.join(timeout=1)
    assert mlflow_proxy.faults(), "the server never went away: the test tested nothing"
    assert registry_state(local_stack) == before
    assert_cli_error(done, mlflow_proxy.url)


def test_mlflow_lost_during_registration_keeps_the_champion_and_a_rerun_adds_one_version(
    local_stack: StackEnv, features_uri: str, champion: str, mlflow_proxy: FaultProxy
) -> None:
    tracking = local_stack["MLFLOW_TRACKING_URI"]
    settings = local_stack.settings()
    # Another seed: the champion's own training would be registered as its version, creating none.
    result = train_model(features_uri, tracking_uri=tracking, settings=settings, **OPTIONS, seed=11)
    before = registry_state(local_stack)
    watcher = cut_after(
        mlflow_proxy, "POST", r"/model-versions/create", FaultRule("reset", count=None, path=r"/api/")
    )
    register = [
        "--run-id",
        result.run_id,
        "--name",
        MODEL,
        "--margin",
        "0",
        "--tracking-uri",
        mlflow_proxy.url,
    ]
    done = run_model_cli(local_stack, "register", *register)
    watcher.join(timeout=1)
    assert mlflow_proxy.faults(), "the server never went away: the test tested nothing"
    during = registry_state(local_stack)
    assert during["aliases"]["champion"] == before["aliases"]["champion"] == champion
    assert_cli_error(done, mlflow_proxy.url)
    mlflow_proxy.set_rules()
    rerun = register_model(result.run_id, name=MODEL, tracking_uri=mlflow_proxy.url, margin=0.0)
    after = registry_state(local_stack)
    new = [v for v in after["versions"] if v not in before["versions"]]
    assert [(v[1], v[2]) for v in new] == [(result.run_id, "READY")], after
    assert rerun.version == str(new[0][0])


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


# --- the deployed pipeline: code pull, crashes and concurrency through the fault proxy ----------

BUCKET = "to-bikes-reliability"
_PRIVATE = ("AWS_", "MLFLOW_", "PREFECT_", "TO_BIKES_")
PROCESSED = ("trips.parquet", "trips.quality.json", "trips.quality.md", "trips.quarantine.parquet")


@pytest.fixture(scope="module")
def s3_proxy(local_stack: StackEnv) -> Iterator[FaultProxy]:
    """The fault proxy in front of the stack's S3, for everything the deployed pipeline does."""
    with FaultProxy(local_stack.endpoint_url, lifetime_s=3000) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def deployed_pipeline(
    local_stack: StackEnv, s3_proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    """Blocks whose S3 endpoint is the proxy, deployments pushed through it, a worker running."""
    env = clean_env(local_stack, TO_BIKES_BUCKET=BUCKET, TO_BIKES_S3_ENDPOINT_URL=s3_proxy.url)
    upload_sample(local_stack, tmp_path_factory.mktemp("reliability-sample"), bucket=BUCKET)
    deploy_project(env)
    try:
        with worker_running(env, local_stack) as deployed:
            yield deployed
    finally:
        save_blocks(clean_env(local_stack))  # the proxy dies with this module: point the blocks back


@pytest.fixture
def pipeline(deployed_pipeline: Deployed) -> Deployed:
    """The module's deployed pipeline with a live worker: started again if a test SIGKILLed it."""
    ensure_worker(deployed_pipeline.env)
    return deployed_pipeline


def objects(deployed: Deployed, prefix: str) -> dict[str, int]:
    """Key (relative to ``prefix``) -> size, listed directly on the S3 server (not through the proxy)."""
    found = s3_client(deployed.stack).list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {item["Key"][len(prefix) :]: item["Size"] for item in found}


def model_versions(deployed: Deployed) -> dict[str, str]:
    """Version -> run id of every version of the pipeline's registered model (none yet: empty)."""
    uri = deployed.env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(uri, registry_uri=uri)
    name = deployed.stack.settings().model_name
    return {v.version: v.run_id for v in client.search_model_versions(f"name = '{name}'")}


def flow_run_of(deployed: Deployed, run_id: str) -> str:
    uri = deployed.env["MLFLOW_TRACKING_URI"]
    return MlflowClient(uri, registry_uri=uri).get_run(run_id).data.tags.get("prefect.flow_run_id", "")


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (psutil's children, recursively); empty if it is gone."""
    try:
        process = psutil.Process(root)
        return [root, *(child.pid for child in process.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def kill_worker(deployed: Deployed) -> list[int]:
    """SIGKILL the worker this module started and every process under it (its flow runs): a crash."""
    record = read_pid(deployed.stack.state_dir, "worker")
    assert record is not None and record.is_alive(), "no worker to kill"
    victims = descendants(record.pid)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not any(process_start_time(pid) for pid in victims):
            break
        time.sleep(0.1)
    return victims


def create_run(deployed: Deployed, deployment: str, parameters: dict[str, Any]) -> str:
    """Start a run with the commands' own helper; its id."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: deployed.env["PREFECT_API_URL"]}):
        started = start_run(ApiCaller(deployed.env["PREFECT_API_URL"], say=print), deployment, parameters)
    return str(started.flow_run.id)


def final_state(deployed: Deployed, flow_run_id: str) -> Any:
    """Wait with the commands' own helper (a deadline of twice a run's wait); the last state."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: deployed.env["PREFECT_API_URL"]}):
        caller = ApiCaller(deployed.env["PREFECT_API_URL"], say=print)
        return wait_final(caller, flow_run_id, "to-bikes", WAIT_S * 2)


@pytest.mark.e2e
def test_code_pull_and_result_upload_survive_transient_s3_faults(
    pipeline: Deployed, s3_proxy: FaultProxy
) -> None:
    rules = [
        FaultRule("503", count=2, methods={"GET"}, path=r"/flows/"),
        FaultRule("drop", count=1, methods={"GET"}, path=r"/flows/"),
        FaultRule("slowdown", count=2, methods={"PUT"}, path=r"/prefect-results/"),
        FaultRule("500", count=1, methods={"PUT"}, path=r"/processed/2025-03/"),
    ]
    s3_proxy.set_rules(*rules)
    code, output, _ = trigger(
        pipeline, "--deployment", PREPROCESS, "--param", "year=2025", "--param", "month=3"
    )
    s3_proxy.set_rules()
    assert code == 0 and "Completed" in output, output
    assert [(rule.fault, rule.hits) for rule in rules] == [(rule.fault, rule.count) for rule in rules]
    assert set(PROCESSED) <= set(objects(pipeline, "processed/2025-03/"))


@pytest.mark.e2e
def test_code_pull_fails_clearly_when_s3_stays_down_and_the_worker_survives(
    pipeline: Deployed, s3_proxy: FaultProxy
) -> None:
    s3_proxy.set_rules(FaultRule("503", count=None, methods={"GET"}, path=r"/flows/"))
    code, output, flow_run_id = trigger(
        pipeline, "--deployment", PREPROCESS, "--param", "year=2025", "--param", "month=4"
    )
    s3_proxy.set_rules()
    assert code == 1 and flow_run_id, output
    state = final_state(pipeline, flow_run_id)
    with prefect_client(pipeline) as client:
        messages = "\n".join(read_messages(client, [flow_run_id]))
    assert state.name in ("Crashed", "Failed"), state  # final, not left Running or Late
    # The flow run's logs (the UI) name the failing step and its S3 cause (one process runs the pull
    # and the flow, so its run logger reports the failure); the worker's log has it too.
    cause = "An error occurred (ServiceUnavailable) when calling the GetObject operation (reached max retries"
    assert "pull_from_s3" in messages and cause in messages, messages[-3000:]
    worker_log = (pipeline.stack.state_dir / "logs" / "worker.log").read_text(errors="replace")
    assert cause in worker_log, worker_log[-3000:]
    record = read_pid(pipeline.stack.state_dir, "worker")
    assert record is not None and record.is_alive(), "a failed code pull took the worker down"
    assert "processed/2025-04/trips.parquet" not in objects(pipeline, "processed/2025-04/")


@pytest.mark.e2e
def test_worker_killed_mid_publish_then_a_new_worker_and_rerun_complete_without_duplicates(
    pipeline: Deployed, s3_proxy: FaultProxy
) -> None:
    before = model_versions(pipeline)
    final_key = rf"^/{BUCKET}/processed/2024/trips\.parquet$"  # the copy to it, not the _tmp/ upload
    s3_proxy.set_rules(FaultRule("stall", count=1, methods={"PUT"}, path=final_key, delay_s=90))
    killed_run = create_run(pipeline, PIPELINE, {"year": 2024, "max_evals": 1})
    assert s3_proxy.wait_for("PUT", final_key, WAIT_S) is not None, "the run never reached publishing"
    kill_worker(pipeline)
    s3_proxy.set_rules()
    after_crash = objects(pipeline, "processed/2024/")
    assert "trips.parquet" not in after_crash, f"a crashed run published trips.parquet: {after_crash}"
    ensure_worker(pipeline.env)  # the new worker
    code, output, rerun = trigger(pipeline, "--param", "year=2024", "--param", "max_evals=1")
    assert code == 0 and "Completed" in output, output
    published = objects(pipeline, "processed/2024/")
    leftovers = sorted(set(published) - set(PROCESSED))
    assert set(PROCESSED) <= set(published)
    assert leftovers == [], leftovers  # no partial file under a final name, no temporary one beside it
    temporary = objects(pipeline, storage.TEMP_PREFIX)
    stale = [key for key in temporary if key.endswith("/processed/2024/trips.parquet")]
    assert len(stale) == 1, temporary  # the killed publish's temporary object, kept under _tmp/
    report = json.loads(
        s3_client(pipeline.stack)
        .get_object(Bucket=BUCKET, Key="processed/2024/trips.quality.json")["Body"]
        .read()
    )
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / "trips.parquet"
        s3_client(pipeline.stack).download_file(BUCKET, "processed/2024/trips.parquet", str(local))
        assert pq.read_metadata(local).num_rows == report["rows_out"] > 0
    added = {v: r for v, r in model_versions(pipeline).items() if v not in before}
    assert [flow_run_of(pipeline, run_id) for run_id in added.values()] == [rerun], added
    assert killed_run != rerun


@pytest.mark.e2e
def test_two_periods_run_at_the_same_time_and_both_complete(pipeline: Deployed) -> None:
    before = model_versions(pipeline)
    server_log = pipeline.stack.state_dir / "logs" / "prefect.log"
    log_start = server_log.stat().st_size if server_log.exists() else 0  # the stack is the session's
    # A seed no other test uses: training is cached on its parameters, and both runs must train.
    params = {"max_evals": 1, "seed": 445}
    runs = [create_run(pipeline, PIPELINE, {"year": year, **params}) for year in (2024, 2025)]
    states = [final_state(pipeline, run) for run in runs]
    assert [state.name for state in states] == ["Completed", "Completed"], [s.message for s in states]
    added = {v: r for v, r in model_versions(pipeline).items() if v not in before}
    assert sorted(flow_run_of(pipeline, run_id) for run_id in added.values()) == sorted(runs)
    # SQLite has one writer: under load Prefect's server logs `database is locked` and the write is
    # retried (README, 10 pipeline runs at once). What must hold is that no write was lost: each run's
    # states are all on record, Completed once, and every task run of it is final.
    for run in runs:
        states, tasks = recorded_history(pipeline, run)
        assert "Running" in states and states[-1] == "Completed" and states.count("Completed") == 1, states
        assert tasks and all(name in {"Completed", "Cached"} for name in tasks), tasks
    with server_log.open("rb") as log:  # only what the server logged during these two runs
        log.seek(log_start)
        locked = log.read().decode(errors="replace").count("database is locked")
    print(f"{locked} 'database is locked' line(s) in the Prefect server log during the two runs (retried)")


def recorded_history(deployed: Deployed, flow_run_id: str) -> tuple[list[str], list[str]]:
    """A flow run's recorded states in order, and the state of each of its task runs, from the server."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with prefect_client(deployed) as client:
        states = sorted(client.read_flow_run_states(flow_run_id), key=lambda state: state.timestamp)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [state.name for state in states], [task.state.name if task.state else "none" for task in tasks]
