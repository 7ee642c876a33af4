"""The one-slot work limits on a real Prefect server: held, released, removed once idle, made again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest

from orchestration.flows import work_locks
from orchestration.flows.work_locks import hold_work_lock, name_work, read_work_limits, sweep_idle_limits
from stack.embedded import StackEnv

pytestmark = pytest.mark.integration


@pytest.fixture
def prefect_api(local_stack: StackEnv) -> Iterator[None]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: local_stack["PREFECT_API_URL"]}):
        yield


def read_limits() -> dict[str, Any]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return {limit.name: limit for limit in read_work_limits(client)}


def test_a_work_limit_is_removed_once_idle_and_never_while_held(prefect_api: None) -> None:
    used, held = name_work("test", uuid4().hex), name_work("test", uuid4().hex)
    with hold_work_lock(held):
        with hold_work_lock(used):
            assert read_limits()[used].active_slots == 1
        # Released, and just used: the sweep after a release keeps it for WORK_LEASE_S.
        assert read_limits()[used].active_slots == 0
        swept = sweep_idle_limits(idle_s=0)
        assert used in swept and held not in swept
        assert used not in read_limits() and read_limits()[held].active_slots == 1
    with hold_work_lock(used):  # made again on its next use
        assert read_limits()[used].active_slots == 1
    sweep_idle_limits(idle_s=0)
    assert not {used, held} & read_limits().keys()


def test_a_limit_removed_before_the_acquisition_is_made_again(
    prefect_api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = name_work("test", uuid4().hex)
    made = work_locks.ensure_work_limit
    calls: list[str] = []

    def ensure_late(client: Any, limit: str) -> None:
        """The first time, as if another run had swept the limit right after it was made."""
        calls.append(limit)
        if len(calls) > 1:
            made(client, limit)

    monkeypatch.setattr(work_locks, "ensure_work_limit", ensure_late)
    with hold_work_lock(name):
        assert read_limits()[name].active_slots == 1
    assert calls == [name, name]
    sweep_idle_limits(idle_s=0)
