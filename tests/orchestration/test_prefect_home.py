"""The suite's in-process flows keep Prefect's local files out of the user's home (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path


def test_prefect_local_storage_is_not_under_the_users_home() -> None:
    from prefect.settings import PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH

    users = Path.home() / ".prefect"
    assert not PREFECT_HOME.value().resolve().is_relative_to(users.resolve())
    assert not PREFECT_LOCAL_STORAGE_PATH.value().resolve().is_relative_to(users.resolve())
