"""``make doctor``'s checks of what runs the pipeline: a worker polling the pool, the deployments of
prefect.yaml and the automations of ``make deploy``. HTTP only (no Prefect import), like ``stack.doctor``.

A server that answers but lacks one of them is a FAIL naming the make target that fixes it: a run
started without a worker stays Scheduled (then Late), one without its deployment cannot be started,
and without the automations scoring, retraining and the zombie-run guard never happen.
"""

from __future__ import annotations

from typing import Any

from models.core.names import AUTOMATIONS
from models.core.settings import Settings
from stack.doctor_check import Check
from stack.prefect_api import http_get, prefect_headers
from stack.worker_status import START_HINT, describe_pool, ignored_worker_names, read_pool_workers

NOT_CHECKED = "not checked: the Prefect API does not answer"


def check_worker(settings: Settings, pool: str) -> Check:
    """A worker Prefect reports ONLINE on the pool (not the background one once its pid file says stopped)."""
    name = f"worker on pool {pool}"
    workers = read_pool_workers(settings, pool)
    if workers is None:
        return Check(name, False, NOT_CHECKED, "make up")
    state, detail = describe_pool(workers, ignored_worker_names(settings, pool))
    if state == "online":
        return Check(name, True, detail)
    return Check(name, False, f"no worker polls it ({detail}): runs would wait as Late", START_HINT)


def expected_deployments(pool: str, spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(deployment name, entrypoint) of every deployment prefect.yaml puts on ``pool``."""
    return [
        (d["name"], d["entrypoint"]) for d in spec.get("deployments", []) if d["work_pool"]["name"] == pool
    ]


def post_api(settings: Settings, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return http_get(settings.prefect_api_url.rstrip("/") + path, prefect_headers(settings), body)


def check_deployments(settings: Settings, pool: str, spec: dict[str, Any]) -> Check:
    """Each of prefect.yaml's deployments of ``pool`` exists on the server (same name and entrypoint)."""
    expected = expected_deployments(pool, spec)
    name = f"deployments on pool {pool}"
    status, found = post_api(settings, "/deployments/filter", {"work_pools": {"name": {"any_": [pool]}}})
    if status != 200:
        return Check(name, False, NOT_CHECKED if status == 0 else f"answers {status}", "make up")
    have = {(d.get("name"), d.get("entrypoint")) for d in found}
    missing = [f"{n} ({entry.rpartition(':')[2]})" for n, entry in expected if (n, entry) not in have]
    if missing:
        return Check(
            name, False, f"{len(missing)} of {len(expected)} missing: {', '.join(missing)}", "make deploy"
        )
    return Check(name, True, f"all {len(expected)} of prefect.yaml registered")


def check_automations(settings: Settings) -> Check:
    """The automations ``make deploy`` creates exist and are enabled."""
    status, found = post_api(settings, "/automations/filter", {})
    if status != 200:
        return Check("automations", False, NOT_CHECKED if status == 0 else f"answers {status}", "make up")
    enabled = {a.get("name") for a in found if a.get("enabled", True)}
    missing = [a for a in AUTOMATIONS if a not in enabled]
    if missing:
        detail = f"{len(missing)} of {len(AUTOMATIONS)} missing or disabled: {', '.join(missing)}"
        return Check("automations", False, detail, "make deploy")
    return Check("automations", True, f"all {len(AUTOMATIONS)} enabled ({', '.join(AUTOMATIONS)})")


def check_runners(settings: Settings, pool: str, spec: dict[str, Any]) -> list[Check]:
    """The worker, deployments and automations checks, in that order."""
    return [
        check_worker(settings, pool),
        check_deployments(settings, pool, spec),
        check_automations(settings),
    ]
