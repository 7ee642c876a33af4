"""Units of issue 22: a cached summary's output record, and the client retry settings flow runs get."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from models.core.settings import PROJECT_ROOT
from orchestration.flows.api_loss import API_OUTAGE_S
from orchestration.flows.caching import OUTPUT_VERSION, find_output_problem, record_output
from orchestration.flows.work_locks import name_work
from stack.worker import OUTAGE_ENV, worker_env

pytestmark = pytest.mark.unit


def test_a_cached_output_is_served_only_while_it_is_the_recorded_one(tmp_path: Path) -> None:
    output = tmp_path / "trips.parquet"
    output.write_bytes(b"the parquet written")
    cached = record_output({"output": str(output)}, None)
    assert cached[OUTPUT_VERSION]["size"] == len(b"the parquet written")
    assert find_output_problem(cached, None) is None
    output.write_bytes(b"the parquet of another run")
    assert "is not the cached output" in find_output_problem(cached, None)
    output.unlink()
    assert find_output_problem(cached, None) == f"{output} is missing"
    assert "records no checksum" in find_output_problem({"output": str(output)}, None)


def test_work_names_differ_by_what_decides_the_work() -> None:
    first = name_work("train", ["s3://b/processed/2025/trips.parquet"], "to-bikes")
    assert first == name_work("train", ["s3://b/processed/2025/trips.parquet"], "to-bikes")
    assert first != name_work("train", ["s3://b/processed/2024/trips.parquet"], "to-bikes")
    assert first.startswith("to-bikes-train-")


def test_every_flow_run_gets_the_outage_retry_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.core.settings import load_settings

    for name in OUTAGE_ENV:
        monkeypatch.delenv(name, raising=False)
    assert OUTAGE_ENV.items() <= worker_env(load_settings()).items()
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    for deployment in spec["deployments"]:
        env = deployment["work_pool"]["job_variables"]["env"]
        assert OUTAGE_ENV.items() <= env.items(), deployment["name"]
    assert int(OUTAGE_ENV["PREFECT_CLIENT_MAX_RETRIES"]) >= 7  # 2 + 4 + ... + 128 s > 3 minutes
    # A restarting MLflow server is waited for as long as a Prefect outage (stack/ cannot import it).
    assert float(OUTAGE_ENV["TO_BIKES_MLFLOW_WAIT_SECONDS"]) == API_OUTAGE_S


def test_a_boto3_client_without_a_retry_config_gets_the_flow_runs_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """prefect-aws's pull_from_s3 builds such a client: legacy mode's 5 quick tries crashed a flow run
    whose code pull met a 30 s S3 restart (make soak)."""
    import boto3

    for name in ("AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"):
        monkeypatch.setenv(name, OUTAGE_ENV[name])
    client = boto3.client(
        "s3", endpoint_url="http://127.0.0.1:1", region_name="us-east-1",
        aws_access_key_id="a", aws_secret_access_key="b",
    )  # fmt: skip
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 12}


def test_the_prefect_api_is_gone_when_an_error_or_its_cause_says_so() -> None:
    import httpx
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

    from orchestration.flows.api_loss import is_api_outage

    refused = httpx.ConnectError("connection refused")
    try:
        raise ConcurrencySlotAcquisitionError("Unable to acquire") from refused
    except ConcurrencySlotAcquisitionError as wrapped:
        assert is_api_outage(wrapped)
    assert is_api_outage(httpx.ReadTimeout("no answer"))
    assert not is_api_outage(ValueError("a bad parameter"))
    assert not is_api_outage(None)


def test_a_completed_training_flow_names_its_version_in_its_state_message() -> None:
    from orchestration.flows.reports import registered_state

    summary = {"version": "12", "decision": "kept-champion", "run_id": "abc"}
    state = registered_state(summary, "to-bikes-member")
    assert state.is_completed()
    assert state.message == "registered version 12 of to-bikes-member: kept-champion"
    assert state.data == summary


def test_a_rerun_says_already_champion_and_the_run_it_reused_never_promoted() -> None:
    from orchestration.flows.reports import registered_state

    summary = {
        "version": "1",
        "decision": "already-champion",
        "run_id": "abc",
        "training_cached": True,
        "rerun_record": "gate.rerun.20250101T000000.000000Z",
    }
    state = registered_state(summary, "to-bikes-member")
    assert state.message == "version 1 of to-bikes-member: already champion (no change); reused run abc"


def test_the_local_prefect_server_keeps_concurrency_leases_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.core.settings import load_settings
    from stack.services import prefect_service

    monkeypatch.delenv("PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE", raising=False)
    env = prefect_service(load_settings(), tmp_path).env
    # In memory, a slot held while the server restarts would stay taken for ever.
    assert env["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"].endswith("lease_storage.filesystem")
    assert env["PREFECT_HOME"] == str(tmp_path / "prefect")  # the leases live in the state folder


@pytest.mark.unit
def test_an_api_loss_ends_only_a_process_a_worker_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process (a test, a notebook) the error reaches the caller; under the engine, one line and exit."""
    import httpx

    from models.core.settings import Settings
    from orchestration.flows import api_loss

    ended: list[str] = []
    monkeypatch.setattr(api_loss, "end_process", ended.append)
    monkeypatch.setattr(api_loss, "describe_api_loss", lambda settings, exc: f"lost: {type(exc).__name__}")
    monkeypatch.delenv(api_loss.ENGINE_FLOW_RUN_ENV, raising=False)
    with pytest.raises(httpx.ConnectError), api_loss.ending_on_api_loss(Settings()):
        raise httpx.ConnectError("refused")
    assert ended == []
    monkeypatch.setenv(api_loss.ENGINE_FLOW_RUN_ENV, "0b7e3f52-0000-4000-8000-000000000000")
    with api_loss.ending_on_api_loss(Settings()):
        raise httpx.ConnectError("refused")
    assert ended == ["lost: ConnectError"]
    with pytest.raises(ValueError), api_loss.ending_on_api_loss(Settings()):
        raise ValueError("not an outage")  # any other error is the flow's own
