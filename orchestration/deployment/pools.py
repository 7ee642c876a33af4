"""Work pool types: which pool and deployments ``make deploy`` uses, and the pool's base job template.

``TO_BIKES_WORK_POOL_TYPE`` (process, docker, kubernetes or ecs; default process) selects one entry of
``definitions.work_pools`` in prefect.yaml, and with it the deployments on that pool. process pools
get Prefect's default job template; the others get agent/work-pools/<type>.json, the worker's own
default template (``get_default_base_job_template()``) with this project's defaults: the agent image,
``python -m prefect.engine``, host network and auto-remove (docker), namespace, service account and
resources (kubernetes), cluster, task role and the API key's secret ARN (ecs).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

POOL_TYPE_ENV = "TO_BIKES_WORK_POOL_TYPE"
POOL_TYPES = ("process", "docker", "kubernetes", "ecs")
DEFAULT_POOL_TYPE = "process"
TEMPLATES = PROJECT_ROOT / "agent" / "work-pools"
PREFECT_FILE = PROJECT_ROOT / "prefect.yaml"


def read_pool_type(value: str | None = None) -> str:
    """The pool type asked for (argument, else ``TO_BIKES_WORK_POOL_TYPE``, else process)."""
    pool_type = (value or os.environ.get(POOL_TYPE_ENV) or DEFAULT_POOL_TYPE).strip().lower()
    if pool_type not in POOL_TYPES:
        raise UserError(
            f"{POOL_TYPE_ENV}={pool_type!r} is not a work pool type; use one of {', '.join(POOL_TYPES)}."
        )
    return pool_type


def read_spec(prefect_file: Path = PREFECT_FILE) -> dict[str, Any]:
    """prefect.yaml as a mapping."""
    return yaml.safe_load(prefect_file.read_text(encoding="utf-8"))


def pool_name(pool_type: str, spec: dict[str, Any]) -> str:
    """The pool prefect.yaml names for ``pool_type`` (``definitions.work_pools.<type>.name``)."""
    pools = spec.get("definitions", {}).get("work_pools", {})
    if pool_type not in pools:
        raise UserError(f"prefect.yaml has no definitions.work_pools.{pool_type}; add the pool of that type.")
    return pools[pool_type]["name"]


def select_deployments(pool_type: str, spec: dict[str, Any]) -> dict[str, Any]:
    """prefect.yaml with only the deployments on the pool of ``pool_type``."""
    name = pool_name(pool_type, spec)
    chosen = [d for d in spec.get("deployments", []) if d["work_pool"]["name"] == name]
    if not chosen:
        raise UserError(f"prefect.yaml has no deployment on work pool {name} ({pool_type}).")
    return {**spec, "deployments": chosen}


def write_prefect_file(pool_type: str, folder: Path, prefect_file: Path = PREFECT_FILE) -> Path:
    """The selected deployments as ``folder/prefect-<type>.yaml``, for ``prefect deploy --prefect-file``."""
    target = folder / f"prefect-{pool_type}.yaml"
    target.write_text(yaml.safe_dump(select_deployments(pool_type, read_spec(prefect_file)), sort_keys=False))
    return target


def base_job_template(pool_type: str) -> dict[str, Any]:
    """The pool's base job template: Prefect's process default, else agent/work-pools/<type>.json."""
    if pool_type == "process":
        from prefect.workers.process import ProcessWorker

        return ProcessWorker.get_default_base_job_template()
    return json.loads((TEMPLATES / f"{pool_type}.json").read_text(encoding="utf-8"))


def ensure_pool(name: str, pool_type: str) -> str:
    """Create the pool with its template, or bring an existing pool's template up to the repo's."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    template = base_job_template(pool_type)
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type=pool_type, base_job_template=template))
            outcome = "created"
        else:
            if pool.type != pool_type:
                raise UserError(
                    f"work pool {name} exists with type {pool.type}, not {pool_type}; delete it "
                    f"(prefect work-pool delete {name}) or choose another {POOL_TYPE_ENV}."
                )
            outcome = "unchanged" if pool.base_job_template == template else "updated"
            if outcome == "updated":
                client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
    log.info("work pool %s (%s): %s", name, pool_type, outcome)
    return f"WorkPool/{name} ({pool_type}): {outcome}"


def image_tag(sha: str, dirty: bool) -> str:
    """The tag ``make agent-image`` (agent/docker/image.sh) gives the image of this checkout."""
    return f"{sha[:12]}-dirty" if dirty else sha[:12]
