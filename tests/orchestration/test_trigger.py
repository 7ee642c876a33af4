"""``make run``'s trigger: parameters refused before a run exists, stale workers, the reason of a failure.

The integration tests start a Prefect server of their own (free port, temporary state) and register
the pipeline flow's deployment with its real parameter schema, without pushing code: a bad parameter
must be refused before a flow run exists, so none may be found afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT
from orchestration.commands import outcome, runs
from orchestration.commands import run as trigger
from stack.embedded import StackEnv, make_stack_env, running_stack
from stack.processes import read_pid
from stack.worker_status import background_worker_name, is_worker_fresh
from tests.orchestration.e2e import clean_env, run_module, wait_for

_PRIVATE = ("AWS_", "MLFLOW_", "PREFECT_", "TO_BIKES_")
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def fake_worker(status: str, seconds_ago: float | None, interval: int | None = 30) -> SimpleNamespace:
    last = None if seconds_ago is None else NOW - dt.timedelta(seconds=seconds_ago)
    return SimpleNamespace(status=status, last_heartbeat_time=last, heartbeat_interval_seconds=interval)


@pytest.mark.unit
def test_a_worker_counts_as_polling_exactly_when_prefect_says_online() -> None:
    """Prefect's foreman sets OFFLINE after three missed heartbeats (tests/stack/test_worker_status.py)."""
    assert is_worker_fresh(fake_worker("ONLINE", 10), NOW)
    assert is_worker_fresh(SimpleNamespace(status=SimpleNamespace(value="ONLINE")), NOW)  # the enum
    assert not is_worker_fresh(fake_worker("OFFLINE", 5), NOW)


@pytest.mark.unit
def test_the_wait_line_names_the_missing_worker_or_the_state() -> None:
    scheduled = SimpleNamespace(name="Late", type="StateType.SCHEDULED")
    running = SimpleNamespace(name="Running", type="StateType.RUNNING")
    assert "no worker polls work pool 'to-bikes'" in runs.describe_wait(scheduled, 0, "to-bikes")
    assert runs.describe_wait(scheduled, 1, "to-bikes") == "waiting: the run is Late"
    assert runs.describe_wait(running, 0, "to-bikes") == "waiting: the run is Running"


@pytest.mark.unit
def test_an_api_outage_is_retried_then_reported_in_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    said: list[str] = []
    calls = iter([httpx.ConnectError("refused"), httpx.ConnectError("refused"), "answer"])

    def flaky() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    caller = runs.ApiCaller("http://127.0.0.1:1/api", say=said.append, retry_s=0.0)
    assert caller.call(flaky) == "answer"
    assert len(said) == 2 and "does not answer" in said[0] and "answers again" in said[1]

    down = runs.ApiCaller("http://127.0.0.1:1/api", say=said.append, outage_s=0.0, retry_s=0.0)

    def dead() -> None:
        raise httpx.ConnectError("refused")

    with pytest.raises(UserError, match=r"The Prefect API at http://127.0.0.1:1/api did not answer"):
        down.call(dead)


@pytest.mark.unit
def test_the_reason_is_the_sentence_the_flow_raised() -> None:
    message = "Flow run encountered an exception: UserError: Parameter month=13 is not between 1 and 12."
    assert outcome.clean_message(message) == "Parameter month=13 is not between 1 and 12."
    assert outcome.clean_message("Task run encountered an exception KeyError: 'x'") == "KeyError: 'x'"
    assert outcome.is_generic("1/2 states failed.")
    assert outcome.is_generic(None)
    assert not outcome.is_generic(message)


@pytest.mark.unit
def test_a_success_prints_rows_metrics_beside_baseline_and_champion_and_the_gate() -> None:
    figures = {
        "rows_in": 20274,
        "rows_out": 18568,
        "quarantined": 1706,
        "metric_table": [
            {"metric": "roc_auc", "model": 0.91, "baseline": 0.5, "previous champion": 0.9},
            {"metric": "log_loss", "model": 0.3, "baseline": 0.6, "previous champion": "-"},
        ],
        "decision": "promoted",
        "version": "3",
        "reason": "challenger 0.91 beats champion 0.90 on 2025-12 by more than 0.002",
        "compared_on": "2025-12",
    }
    lines = (
        outcome.describe_rows(figures) + outcome.describe_metrics(figures) + outcome.describe_gate(figures)
    )
    assert lines[0] == "rows: in 20274, out 18568, quarantined 1706"
    assert lines[1] == "roc_auc: model 0.9100 (baseline 0.5000, previous champion 0.9000)"
    assert lines[2].startswith("gate: promoted (version 3): challenger 0.91 beats")
    assert "compared on 2025-12" in lines[3]
    assert outcome.describe_gate({"promoted": False}) == ["gate: champion kept"]
    assert outcome.describe_gate({}) == []


@pytest.mark.unit
def test_a_rerun_prints_already_champion_and_the_reused_run_not_promoted() -> None:
    figures = {
        "decision": "already-champion",
        "promoted": False,
        "version": "1",
        "reason": "Version 1 is already champion (roc_auc 0.9700 on 2025-12); nothing changes.",
        "training_cached": True,
        "run_id": "abc",
        "rerun_record": "gate.rerun.20250101T000000.000000Z",
    }
    head, details = outcome.describe_gate(figures)
    assert head == (
        "gate: already champion (no change) (version 1): Version 1 is already champion "
        "(roc_auc 0.9700 on 2025-12); nothing changes."
    )
    assert details.strip().startswith("reused run abc; ")
    assert "rerun record gate.rerun.20250101T000000.000000Z" in details


# --- against a real Prefect server -------------------------------------------------------------


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """A Prefect server of its own, with the pipeline flow's deployment (real parameter schema)."""
    env = make_stack_env(tmp_path_factory.mktemp("trigger-prefect"), ("prefect",))
    with running_stack(env, ("prefect",)):
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            register_pipeline_deployment(env)
        yield env


def register_pipeline_deployment(env: StackEnv) -> None:
    """The pool ``to-bikes`` and ``to-bikes-pipeline/on-demand`` as ``make deploy`` names them (no code)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import WorkPoolCreate

    from orchestration.flows.pipeline import pipeline_flow

    with SyncPrefectClient(env["PREFECT_API_URL"]) as client:
        client.create_work_pool(WorkPoolCreate(name="to-bikes", type="process"))
        flow_id = client.create_flow(pipeline_flow)
        client.create_deployment(
            flow_id,
            "on-demand",
            work_pool_name="to-bikes",
            work_queue_name="pipeline",
            parameter_openapi_schema=pipeline_flow.parameters.model_dump_for_openapi(),
            enforce_parameter_schema=True,
        )


def run_trigger(env: StackEnv, *args: str) -> subprocess.CompletedProcess[str]:
    """``make run``'s command against the test server."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE)}
    return subprocess.run(
        [sys.executable, "-m", "orchestration", "run", *args],
        cwd=PROJECT_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def count_flow_runs(env: StackEnv) -> int:
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(env["PREFECT_API_URL"]) as client:
        return len(client.read_flow_runs())


@pytest.mark.integration
@pytest.mark.parametrize(
    ("params", "sentence"),
    [
        (["year=20x5"], "Parameter year='20x5' is not a four-digit year."),
        (["year=2025", "month=13"], "Parameter month=13 is not between 1 and 12."),
        (["month=0"], "Parameter month=0 is not between 1 and 12."),
        (["yeer=2025"], "Parameter 'yeer' is not one of 'on-demand''s"),
        (["max_evals=many"], "Validation failed for field 'max_evals'"),
    ],
)
def test_bad_parameters_are_one_sentence_and_create_no_run(
    prefect_server: StackEnv, params: list[str], sentence: str
) -> None:
    args = [part for param in params for part in ("--param", param)]
    done = run_trigger(prefect_server, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert sentence in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert count_flow_runs(prefect_server) == 0


FAILING_FLOW = """
from prefect import flow, task

from models.core.errors import UserError


@task(name="read-month")
def read_month():
    raise UserError("No raw files for 2031-02 under s3://bucket/raw/2031/; run `make sync-data` first.")


@flow(name="failing-on-purpose")
def failing():
    read_month()


print(failing(return_state=True).state_details.flow_run_id)
"""


@pytest.mark.integration
def test_a_failed_flow_run_reports_the_user_error_it_raised(prefect_server: StackEnv) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    # A process of its own: an in-process flow would send its task-run events through the session's
    # events client, which may still point at a server an earlier test started.
    env = {**os.environ, **prefect_server, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", FAILING_FLOW],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    flow_run_id = done.stdout.strip().splitlines()[-1]
    with SyncPrefectClient(prefect_server["PREFECT_API_URL"]) as client:
        stored = client.read_flow_run(flow_run_id).state
        reason = outcome.failure_reason(client, flow_run_id, stored)
        generic = SimpleNamespace(message="1/1 states failed.", name="Failed")
        from_task = outcome.failure_reason(client, flow_run_id, generic)
    expected = "No raw files for 2031-02 under s3://bucket/raw/2031/; run `make sync-data` first."
    assert stored.is_failed()
    assert reason == expected
    assert from_task == expected


@pytest.mark.unit
def test_params_and_wait_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.cli import main
    from orchestration.commands import cli

    calls: list[tuple[str, dict, float]] = []
    monkeypatch.setattr(cli, "connect_prefect", lambda: None)
    monkeypatch.setattr(trigger, "run_deployment_once", lambda *call: calls.append(call) or (True, []))
    assert main(["run", "--param", "year=2025"]) == 0
    assert main(["run", "--wait-seconds", "30"]) == main(["run", "--timeout", "30"]) == 0
    assert calls == [
        (trigger.PIPELINE, {"year": 2025}, trigger.DEFAULT_WAIT_S),
        (trigger.PIPELINE, {}, 30.0),
        (trigger.PIPELINE, {}, 30.0),
    ]
    assert trigger.DEFAULT_WAIT_S == 600
    assert json.loads(json.dumps(trigger.parse_params(["year=2025"]))) == {"year": 2025}


@pytest.mark.unit
def test_make_up_resumes_only_a_worker_make_demo_had_started(tmp_path, monkeypatch) -> None:
    from models.core.settings import Settings
    from stack import worker

    settings = Settings(state_dir=tmp_path)
    line = worker.resume_background(settings)
    assert line == (
        "worker   not started: no background worker was running before `make down`; "
        "`make worker-start` starts one in the background, `make agent` one in the foreground"
    )
    (tmp_path / worker.WANTED_MARKER).write_text("started\n")
    monkeypatch.setattr(worker, "start_background", lambda s: f"worker started in {s.state_dir}")
    assert worker.resume_background(settings) == f"worker started in {tmp_path}"


@pytest.mark.unit
def test_make_run_counts_no_worker_at_once_when_the_background_worker_is_known_stopped(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect still lists a worker ONLINE after `make worker-stop`; its missing pid file is enough."""
    from models.core.settings import Settings

    monkeypatch.setenv("TO_BIKES_STATE_DIR", str(tmp_path))
    own = background_worker_name(Settings(state_dir=tmp_path), "to-bikes")
    listed = [SimpleNamespace(name=own, status="ONLINE"), SimpleNamespace(name="gone", status="OFFLINE")]
    client = SimpleNamespace(read_workers_for_work_pool=lambda pool: listed)
    assert runs.read_fresh_workers(client, "to-bikes") == []
    listed.append(SimpleNamespace(name="agent", status="ONLINE"))  # `make agent` in another terminal
    assert [w.name for w in runs.read_fresh_workers(client, "to-bikes")] == ["agent"]
    assert runs.describe_no_worker("to-bikes") == (
        "waiting: no worker polls work pool 'to-bikes': `make worker-start` starts one in the background, "
        "`make agent` one in the foreground"
    )


STALE_WAIT_S = 240  # past the 90 s a silent worker still counts as polling, on a loaded machine


def wait_for_line(env: StackEnv, wanted: str) -> tuple[list[str], str]:
    """``make run`` (a pipeline run) until it prints ``wanted`` after its run URL, or gives up after
    ``STALE_WAIT_S`` (its own ``--timeout``, the deadline of this wait); its lines and its flow run id."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE)}
    command = [sys.executable, "-m", "orchestration", "run", "--param", "year=2025"]
    process = subprocess.Popen(
        [*command, "--timeout", str(STALE_WAIT_S)],
        cwd=PROJECT_ROOT,
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if lines[-1] == wanted and any("/runs/flow-run/" in seen for seen in lines):
                break  # said while waiting for the run it created (it may also say so before creating it)
    finally:
        process.terminate()
        process.communicate(timeout=60)
    found = [m[1] for line in lines if (m := re.search(r"/runs/flow-run/([0-9a-f-]{36})", line))]
    return lines, found[0] if found else ""


def worker_line(env: dict[str, str]) -> str:
    """``make status``'s worker line (``python -m orchestration worker status``)."""
    return run_module("orchestration", env, "worker", "status").stdout.strip()


@pytest.mark.e2e
def test_worker_start_and_stop_are_known_at_once_by_status_and_run(prefect_server: StackEnv) -> None:
    """``make worker-start`` / ``make worker-stop``: after a stop Prefect still lists the worker ONLINE
    (up to three heartbeats), yet ``make status`` says offline and ``make run`` says no worker polls before
    it creates the run; a restart is one row (``1 polling``), not a second one."""
    from prefect.client.orchestration import SyncPrefectClient

    env = clean_env(prefect_server)
    lines: list[str] = []
    run_module("orchestration", env, "worker", "start")
    try:
        assert " online " in worker_line(env) and "(1 polling" in worker_line(env)
        assert run_module("orchestration", env, "worker", "stop").stdout.startswith("worker stopped (pid ")
        with SyncPrefectClient(prefect_server["PREFECT_API_URL"]) as client:
            listed = client.read_workers_for_work_pool("to-bikes")
        assert [w.status.value for w in listed] == ["ONLINE"]  # Prefect has not noticed yet
        assert worker_line(env).startswith("worker   offline    pool to-bikes (none polling, ")
        done = run_trigger(prefect_server, "--timeout", "3")
        lines = done.stdout.splitlines()
        assert lines[0] == runs.describe_no_worker("to-bikes"), done.stdout + done.stderr
        run_module("orchestration", env, "worker", "start")
        assert "(1 polling" in worker_line(env)  # the same row as before the stop
    finally:
        run_module("orchestration", env, "worker", "stop", check=False, timeout=120)
    found = {m[1] for line in lines if (m := re.search(r"/runs/flow-run/([0-9a-f-]{36})", line))}
    with SyncPrefectClient(prefect_server["PREFECT_API_URL"]) as client:
        for flow_run_id in found:  # the run it left Scheduled must not count for another test
            client.delete_flow_run(flow_run_id)


@pytest.mark.e2e
@pytest.mark.slow
def test_make_run_says_no_worker_polls_after_the_worker_was_sigkilled(prefect_server: StackEnv) -> None:
    """A real worker (``stack.worker start``), SIGKILLed: Prefect still lists it for a while, and
    ``make run`` names the missing worker (its pid file names a dead process: at once;
    ``runs.read_fresh_workers``)."""
    from prefect.client.orchestration import SyncPrefectClient

    env = clean_env(prefect_server)
    wanted = runs.describe_no_worker("to-bikes")
    run_module("orchestration", env, "worker", "start")
    try:
        record = read_pid(prefect_server.state_dir, "worker")
        assert record is not None and record.is_alive()
        os.killpg(record.pid, signal.SIGKILL)  # its own process group (start_new_session)
        wait_for("the worker's processes gone", lambda: not record.is_alive(), 60)
        lines, flow_run_id = wait_for_line(prefect_server, wanted)
    finally:
        run_module("orchestration", env, "worker", "stop", check=False, timeout=120)  # its pid file
    if flow_run_id:  # the run it left Scheduled must not count for another test of this server
        with SyncPrefectClient(prefect_server["PREFECT_API_URL"]) as client:
            client.delete_flow_run(flow_run_id)
    assert flow_run_id and wanted in lines, "\n".join(lines)


@pytest.mark.unit
def test_make_score_prints_whether_the_month_was_already_scored() -> None:
    message = (
        "2025-06 with version 1: in-sample; monitoring already scored by http://mlflow/#/runs/abc "
        "(flow run f1); predictions cached"
    )
    assert outcome.describe_state(SimpleNamespace(message=message)) == [f"result: {message}"]
    assert outcome.describe_state(SimpleNamespace(message="All states completed.")) == []
    assert outcome.describe_state(SimpleNamespace(message=None)) == []
