"""Fixtures of the orchestration tests: a deployed project with a worker (one per module that asks).

The helpers they use live in ``tests/orchestration/e2e.py``; no test module imports another.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stack.embedded import StackEnv
from tests.orchestration.e2e import (
    BUCKET,
    Deployed,
    PipelineRun,
    clean_env,
    deploy_project,
    trigger_pipeline,
    upload_sample,
    worker_running,
)


@pytest.fixture(scope="module")
def deployed(local_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """Blocks saved, deployments pushed to S3, a worker running from a folder without the code."""
    env = clean_env(local_stack, TO_BIKES_BUCKET=BUCKET)
    upload_sample(local_stack, tmp_path_factory.mktemp("sample"))
    deploy_project(env)
    with worker_running(env, local_stack) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def first_run(deployed: Deployed) -> PipelineRun:
    return trigger_pipeline(deployed)


@pytest.fixture(scope="module")
def second_run(deployed: Deployed, first_run: PipelineRun) -> PipelineRun:
    return trigger_pipeline(deployed)


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """A stack of this module's own: no automation of another module's deployments fires here."""
    from stack.embedded import make_stack_env, running_stack

    env = make_stack_env(tmp_path_factory.mktemp("module-stack"))
    with running_stack(env):
        yield env
