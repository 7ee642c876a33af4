"""``make doctor`` checks what runs the pipeline: a worker polling the pool, the deployments of
prefect.yaml and the automations of ``make deploy``; each missing one is a FAIL line naming its fix."""

from __future__ import annotations

from typing import Any

import pytest

from models.core.names import AUTOMATIONS
from models.core.settings import Settings
from stack import doctor_prefect
from stack.embedded import make_stack_env, running_stack
from stack.prefect_api import http_get
from stack.prefect_yaml import read_spec
from stack.worker_status import PoolWorker, background_worker_name

SPEC = {
    "deployments": [
        {"name": "on-demand", "entrypoint": "flows/a.py:a_flow", "work_pool": {"name": "to-bikes"}},
        {"name": "scheduled-daily", "entrypoint": "flows/b.py:b_flow", "work_pool": {"name": "to-bikes"}},
        {"name": "on-demand", "entrypoint": "flows/a.py:a_flow", "work_pool": {"name": "to-bikes-docker"}},
    ]
}


def answers(deployments: list[dict[str, Any]], automations: list[dict[str, Any]]):
    def post(settings: Settings, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return 200, deployments if path.startswith("/deployments") else automations

    return post


@pytest.mark.unit
def test_doctor_fails_without_a_worker_deployment_or_automation_and_names_the_fix(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(state_dir=tmp_path)
    monkeypatch.setattr(doctor_prefect, "read_pool_workers", lambda s, pool: [])
    monkeypatch.setattr(doctor_prefect, "post_api", answers([], []))
    worker, deployments, automations = doctor_prefect.check_runners(settings, "to-bikes", SPEC)
    assert worker.line() == (
        "FAIL  worker on pool to-bikes              no worker polls it (no worker ever polled it): "
        "runs would wait as Late -> fix: `make worker-start` starts one in the background, "
        "`make agent` one in the foreground"
    )
    assert deployments.line().startswith("FAIL  deployments on pool to-bikes")
    assert (
        "2 of 2 missing: on-demand (a_flow), scheduled-daily (b_flow) -> fix: make deploy"
        in deployments.line()
    )
    assert automations.line().endswith(
        f"5 of 5 missing or disabled: {', '.join(AUTOMATIONS)} -> fix: make deploy"
    )


@pytest.mark.unit
def test_doctor_passes_with_a_polling_worker_every_deployment_and_every_automation(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(state_dir=tmp_path)
    polling = [PoolWorker("agent", "ONLINE", None, 30)]
    monkeypatch.setattr(doctor_prefect, "read_pool_workers", lambda s, pool: polling)
    found = [{"name": n, "entrypoint": e} for n, e in doctor_prefect.expected_deployments("to-bikes", SPEC)]
    monkeypatch.setattr(doctor_prefect, "post_api", answers(found, [{"name": a} for a in AUTOMATIONS]))
    assert all(check.ok for check in doctor_prefect.check_runners(settings, "to-bikes", SPEC))
    disabled = [{"name": a, "enabled": a != AUTOMATIONS[0]} for a in AUTOMATIONS]
    monkeypatch.setattr(doctor_prefect, "post_api", answers(found[:1], disabled))
    _, deployments, automations = doctor_prefect.check_runners(settings, "to-bikes", SPEC)
    assert "1 of 2 missing: scheduled-daily (b_flow)" in deployments.detail
    assert automations.detail == f"1 of 5 missing or disabled: {AUTOMATIONS[0]}"


def post_json(url: str, body: dict[str, Any]) -> None:
    """POST (a busy server's 503 asked again, as ``stack.prefect_api.http_get`` does); 2xx or fail."""
    status, answer = http_get(url, body=body)
    assert 200 <= status < 300, (url, status, answer)


@pytest.mark.integration
def test_doctor_on_a_real_server_counts_no_stopped_background_worker_and_no_deployment(tmp_path) -> None:
    """An empty Prefect server: three FAILs; a worker heartbeat under the background worker's name does
    not count while its pid file says it is stopped, another worker's does."""
    env = make_stack_env(tmp_path, ("prefect",))
    with running_stack(env, ("prefect",)):
        settings = env.settings()
        api = settings.prefect_api_url.rstrip("/")
        post_json(f"{api}/work_pools/", {"name": settings.work_pool, "type": "process"})
        own = {"name": background_worker_name(settings), "heartbeat_interval_seconds": 30}
        post_json(f"{api}/work_pools/{settings.work_pool}/workers/heartbeat", own)
        checks = doctor_prefect.check_runners(settings, settings.work_pool, read_spec())
        assert [c.ok for c in checks] == [False, False, False]
        assert [c.fix for c in checks[1:]] == ["make deploy", "make deploy"]
        assert "6 of 6 missing" in checks[1].detail
        other = {"name": "agent", "heartbeat_interval_seconds": 30}
        post_json(f"{api}/work_pools/{settings.work_pool}/workers/heartbeat", other)
        worker = doctor_prefect.check_worker(settings, settings.work_pool)
        assert worker.ok and worker.detail.startswith("1 polling")
