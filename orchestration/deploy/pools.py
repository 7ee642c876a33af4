"""Work pool types: which pool and deployments ``make deploy`` uses, and the pool's base job template.

``TO_BIKES_WORK_POOL_TYPE`` (process, docker, kubernetes or ecs; default process) selects one entry of
``definitions.work_pools`` in prefect.yaml, and with it the deployments on that pool. process pools
get Prefect's default job template; the others get agent/work-pools/<type>.json, the worker's own
default template (``get_default_base_job_template()``) with this project's defaults: the agent image,
``to-bikes-engine`` (the deployments' command), host network and auto-remove (docker), namespace,
service account and resources (kubernetes), cluster, task role and the API key's secret ARN (ecs).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT
from stack.prefect_yaml import POOL_TYPE_ENV, PREFECT_FILE, pool_name, read_spec

log = logging.getLogger(__name__)

TEMPLATES = PROJECT_ROOT / "agent" / "work-pools"


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
