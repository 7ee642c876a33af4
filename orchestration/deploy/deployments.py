"""``make deploy``: push the code of one exact commit to S3 and register the deployments of prefect.yaml.

    agent/.venv/bin/python -m orchestration deploy [--allow-dirty] [--pool-type TYPE]

Refuses a work tree with uncommitted changes (unless ``--allow-dirty`` or ``ALLOW_DIRTY=1``), so every
bundle on S3 is exactly one commit; a forced dirty deploy goes to a folder of its own
(``flows/<sha>-dirty-<UTC time>/``) and never overwrites a clean commit's bundle. Checks the API and
the blocks first, creates the work pool of the selected type (``TO_BIKES_WORK_POOL_TYPE``: process,
docker, kubernetes or ecs; see orchestration.deploy.pools) and its queues if they are missing,
then runs ``prefect --no-prompt deploy --all`` on that pool's deployments of prefect.yaml with
``TO_BIKES_GIT_SHA``/``TO_BIKES_BUNDLE`` and ``TO_BIKES_API_OUTAGE_S`` set, and for container pools
``TO_BIKES_AGENT_IMAGE`` (default to-bikes-agent; a registry repository for kubernetes and ecs) and
``TO_BIKES_IMAGE_TAG`` (the tag ``make agent-image`` gives this commit).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT, Settings
from models.training.lineage import run_git
from orchestration.deploy.bundle import stage_bundle
from orchestration.deploy.pools import ensure_pool, image_tag, write_prefect_file
from orchestration.flows.api_loss import API_OUTAGE_S
from stack.prefect_yaml import pool_name, read_pool_type, read_spec, read_work_queues

log = logging.getLogger(__name__)

DEPLOY_TIMEOUT_S = 900
AGENT_IMAGE = "to-bikes-agent"


@dataclass(frozen=True)
class GitState:
    """The commit to deploy, whether the tree differs from it, and the bundle folder name."""

    sha: str
    dirty: bool
    bundle: str


def read_checkout_state(root: Path = PROJECT_ROOT) -> GitState:
    """HEAD and ``git status`` of the checkout on disk; no git repository is a UserError.

    Unlike ``models.training.lineage.read_git_state`` it never reads ``TO_BIKES_GIT_COMMIT``: that names the
    commit of a bundle already deployed, while deploy must name the files it is about to push.
    """
    sha = run_git(["rev-parse", "HEAD"], root)
    status = run_git(["status", "--porcelain"], root)
    if not sha or status is None:
        raise UserError(f"{root} is not a git checkout with a commit; deploy from a clone of the project.")
    dirty = bool(status)
    bundle = f"{sha}-dirty-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}" if dirty else sha
    return GitState(sha=sha, dirty=dirty, bundle=bundle)


def check_clean(state: GitState, allow_dirty: bool) -> None:
    """Refuse uncommitted changes unless the user asked for a dirty deploy."""
    if state.dirty and not allow_dirty:
        raise UserError(
            "the work tree has uncommitted changes (see `git status`); commit them so the bundle is "
            "an exact commit, or deploy anyway with ALLOW_DIRTY=1."
        )
    if state.dirty:
        log.warning("deploying uncommitted changes on top of %s as bundle %s", state.sha, state.bundle)


def ensure_queues(pool: str, queues: list[str], pool_type: str = "process") -> list[str]:
    """Create the work pool of ``pool_type`` and its named queues when missing; one line per object."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from orchestration.deploy.blocks import ensure_work_pool

    lines = [ensure_work_pool(pool) if pool_type == "process" else ensure_pool(pool, pool_type)]
    with get_client(sync_client=True) as client:
        for name in queues:
            try:
                client.read_work_queue_by_name(name, work_pool_name=pool)
                outcome = "unchanged"
            except ObjectNotFound:
                client.create_work_queue(name, work_pool_name=pool)
                outcome = "created"
            lines.append(f"WorkQueue/{pool}/{name}: {outcome}")
    return lines


def check_blocks() -> Any:
    """The blocks prefect.yaml refers to must exist before anything is pushed; returns the config."""
    from prefect_aws import AwsCredentials

    from models.core.names import AWS_BLOCK, CONFIG_BLOCK
    from orchestration.flows.config_block import ToBikesConfig
    from orchestration.flows.settings import load_block

    load_block(AwsCredentials, AWS_BLOCK)
    return load_block(ToBikesConfig, CONFIG_BLOCK)


def run_prefect_deploy(state: GitState, pool_type: str = "process", root: Path = PROJECT_ROOT) -> None:
    """``prefect --no-prompt deploy --all`` from this venv in a staged copy of the commit.

    The deployments of the other pool types are left out through a prefect file of their own, written
    beside the staged copy (never into it: the bundle stays exactly the commit).
    """
    with tempfile.TemporaryDirectory(prefix="to-bikes-bundle-") as scratch:
        staging = Path(scratch) / "bundle"
        staging.mkdir()
        count = stage_bundle(root, state.sha, state.dirty, staging)
        log.info("staged %s files of %s in %s", count, state.bundle, staging)
        prefect_file = write_prefect_file(pool_type, Path(scratch), staging / "prefect.yaml")
        run_prefect_cli(state, staging, prefect_file)


def run_prefect_cli(state: GitState, cwd: Path, prefect_file: Path | None = None) -> None:
    """Run ``prefect deploy`` in ``cwd`` with the commit, bundle folder and image tag in its environment."""
    prefect = Path(sys.executable).parent / "prefect"
    env = {
        **os.environ,
        "TO_BIKES_GIT_SHA": state.sha,
        "TO_BIKES_GIT_DIRTY": str(state.dirty).lower(),
        "TO_BIKES_BUNDLE": state.bundle,
        "TO_BIKES_AGENT_IMAGE": os.environ.get("TO_BIKES_AGENT_IMAGE") or AGENT_IMAGE,
        "TO_BIKES_IMAGE_TAG": image_tag(state.sha, state.dirty),
        # prefect.yaml's job env gives it to every flow run: how long to-bikes-engine waits for the API.
        "TO_BIKES_API_OUTAGE_S": str(API_OUTAGE_S),
        "PYTHONPATH": str(
            cwd
        ),  # the push step (orchestration.deploy.bundle.push_code_bundle) imports from here
    }
    command = [str(prefect), "--no-prompt", "deploy", "--all"]
    if prefect_file is not None:
        command += ["--prefect-file", str(prefect_file)]
    try:
        done = subprocess.run(command, cwd=cwd, env=env, timeout=DEPLOY_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise UserError(f"`prefect deploy` did not finish within {DEPLOY_TIMEOUT_S} s.") from exc
    if done.returncode != 0:
        raise UserError(f"`prefect deploy --all` failed (exit {done.returncode}); see the output above.")


def deploy(
    settings: Settings, allow_dirty: bool = False, root: Path = PROJECT_ROOT, pool_type: str | None = None
) -> list[str]:
    """Check, create pool and queues, push and register; returns one line per step."""
    from orchestration.deploy.blocks import check_prefect_api

    pool_type = read_pool_type(pool_type)
    state = read_checkout_state(root)
    check_clean(state, allow_dirty)
    check_prefect_api(settings)
    config = check_blocks()
    pool = pool_name(pool_type, read_spec())
    lines = ensure_queues(pool, read_work_queues().get(pool, []), pool_type)
    run_prefect_deploy(state, pool_type, root)
    bundle = config.s3_uri(config.flows_prefix, state.bundle) + "/"
    lines += [f"code bundle: {bundle}", f"commit: {state.sha}{' (dirty)' if state.dirty else ''}"]
    if pool_type != "process":
        image = os.environ.get("TO_BIKES_AGENT_IMAGE") or AGENT_IMAGE
        lines.append(f"image: {image}:{image_tag(state.sha, state.dirty)} (pool {pool}, {pool_type})")
    return lines
