"""``python -m orchestration deploy|automations|loop-automations|notifications|blocks``: registration.

``make blocks`` runs ``blocks``; ``make deploy`` runs ``deploy``, ``automations``, ``loop-automations`` and
``notifications`` in that order. Each command prints one line per object it created, updated or found
unchanged, never a secret value. The Prefect-side modules are imported by the command that needs them.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from models.core.settings import load_settings


def deploy_command(
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="deploy uncommitted changes (own folder)")
    ] = False,
    pool_type: Annotated[
        str | None, typer.Option(help="process, docker, kubernetes or ecs (default: TO_BIKES_WORK_POOL_TYPE)")
    ] = None,
) -> int:
    """Push the code of one commit to S3 and register prefect.yaml's deployments for the pool."""
    from orchestration.deploy.deployments import deploy

    allow_dirty = allow_dirty or os.environ.get("ALLOW_DIRTY", "") not in ("", "0")
    for line in deploy(load_settings(), allow_dirty, pool_type=pool_type):
        print(line)
    return 0


def automations_command() -> int:
    """Ensure the automation that marks a silent (zombie) flow run Crashed."""
    from orchestration.deploy.automations import save_automations

    for line in save_automations(load_settings()):
        print(line)
    return 0


def loop_automations_command() -> int:
    """Ensure the automations that score after preprocessing and retrain on a monitoring breach."""
    from orchestration.deploy.loop_automations import save_loop_automations
    from stack.prefect_api import require_prefect_api

    require_prefect_api(load_settings())
    for line in save_loop_automations():
        print(line)
    return 0


def notifications_command() -> int:
    """Ensure the notification automations (TO_BIKES_NOTIFY_URL set), or remove them (empty)."""
    from orchestration.deploy.notifications import save_notices
    from stack.prefect_api import require_prefect_api

    settings = load_settings()
    require_prefect_api(settings)
    for line in save_notices(settings):
        print(line)
    return 0


def blocks_command() -> int:
    """Save the AWS, S3 bucket and config blocks and the work pool from the settings (idempotent)."""
    from orchestration.deploy.blocks import save_all

    for line in save_all(load_settings()):
        print(line)
    return 0
