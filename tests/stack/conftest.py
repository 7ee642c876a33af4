"""Fixtures of the stack tests: a stack of their own (they restart it and save blocks in it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stack.control import start_stack, stop_stack
from stack.embedded import StackEnv, make_stack_env


@pytest.fixture(scope="package")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """A full stack (Prefect, S3, MLflow) that only the stack tests use; stopped at the end."""
    env = make_stack_env(tmp_path_factory.mktemp("own-stack"))
    settings = env.settings()
    try:
        start_stack(settings, die_with_parent=True)
        yield env
    finally:
        stop_stack(settings)
