"""What prefect.yaml declares for workers: the work pool of each type and the queues its deployments use.

Prefect-free, so that ``make doctor`` and the worker supervisor (``stack.worker``) read the same spec
as ``make deploy`` (``orchestration.deploy``) without importing it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT

POOL_TYPE_ENV = "TO_BIKES_WORK_POOL_TYPE"
POOL_TYPES = ("process", "docker", "kubernetes", "ecs")
DEFAULT_POOL_TYPE = "process"
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


def read_work_queues(prefect_file: Path = PREFECT_FILE) -> dict[str, list[str]]:
    """Work pool name -> the work queue names the deployments of prefect.yaml use."""
    spec = read_spec(prefect_file)
    queues: dict[str, list[str]] = {}
    for deployment in spec.get("deployments", []):
        pool = deployment["work_pool"]
        queues.setdefault(pool["name"], [])
        if pool.get("work_queue_name") and pool["work_queue_name"] not in queues[pool["name"]]:
            queues[pool["name"]].append(pool["work_queue_name"])
    return queues
