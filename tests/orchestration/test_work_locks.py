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

OVERLAP_S = 10  # how long a monitoring waits for a second run that could overlap it (none may)


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


def test_two_runs_at_once_monitor_one_month_and_version_once(
    prefect_api: None, local_stack: StackEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The automation's score run and ``make score`` together: one monitors, the other reads it back."""
    import contextvars
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from orchestration.flows import scoring

    monitored: dict[tuple[str, str, str], dict[str, str]] = {}  # what MLflow holds
    looks: list[str] = []
    made: list[str] = []  # monitoring runs made
    second_look = threading.Event()

    def find(period: str, version: str, checksum: str, settings: Any) -> dict[str, str] | None:
        looks.append(threading.current_thread().name)
        if len(looks) == 2:
            second_look.set()
        return monitored.get((period, version, checksum))

    def monitor(period: str, version: str, checksum: str, settings: Any) -> dict[str, str]:
        # Without the lock the other run looks now, finds nothing and monitors too; with it, it waits.
        second_look.wait(timeout=OVERLAP_S)
        made.append(threading.current_thread().name)
        summary = {"monitoring_run_id": f"run-{len(made)}", "flow_run": threading.current_thread().name}
        monitored[(period, version, checksum)] = {**summary, "monitoring_run_url": "http://mlflow/run-1"}
        return summary

    monkeypatch.setattr(scoring, "run_cached", lambda *args: ({"rows": 1}, True))
    monkeypatch.setattr(scoring, "read_processed_checksum", lambda period, settings: "sum")
    monkeypatch.setattr(scoring, "find_monitoring", find)
    monkeypatch.setattr(scoring, "monitor_period", monitor)
    settings = local_stack.settings()
    version = uuid4().hex  # a lock of this test's own
    with ThreadPoolExecutor(2, thread_name_prefix="flow-run") as pool:  # each with this API's settings
        started = [
            pool.submit(
                contextvars.copy_context().run, scoring.score_and_monitor, "2025-06", version, settings
            )
            for _ in range(2)
        ]
        runs = [future.result() for future in started]
    assert len(made) == 1 and len(looks) == 2
    origins = sorted(origin for _, _, origin, _ in runs)
    assert origins[0].startswith("already scored by http://mlflow/run-1 (flow run flow-run_")
    assert origins[0].endswith("; predictions cached")
    assert origins[1] == "computed in this run; predictions cached"
    assert sorted(computed for *_, computed in runs) == [False, True]
    sweep_idle_limits(idle_s=0)


def test_two_ingests_at_once_lose_no_manifest_update(
    prefect_api: None, local_stack: StackEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ingest reads ``raw/_manifest.json``, adds what it wrote and writes it back: two at once must
    not both read the old manifest (the second write would drop the first's entries)."""
    import contextvars
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import models.data.ingest as ingest_module
    from models.data.raw_manifest import read_manifest, write_manifest
    from orchestration.flows.ingest import ingest_task

    bucket = f"to-bikes-manifest-{uuid4().hex[:8]}"  # a manifest of this test's own
    local_stack.s3_client().create_bucket(Bucket=bucket)
    settings = local_stack.settings().model_copy(update={"bucket": bucket})
    reads: list[str] = []
    second_read = threading.Event()

    def ingest(settings: Any) -> Any:
        manifest = read_manifest(settings)
        reads.append(threading.current_thread().name)
        if len(reads) == 2:
            second_read.set()
        # Without the lock the other ingest reads the same manifest now; with it, it waits for this write.
        second_read.wait(timeout=OVERLAP_S)
        manifest["files"][f"raw/2025/{threading.current_thread().name}.csv"] = {"sha256": "x", "months": []}
        write_manifest(manifest, settings)
        return ingest_module.IngestReport("http://portal", manifest_written=True)

    monkeypatch.setattr(ingest_module, "ingest_portal", ingest)
    with ThreadPoolExecutor(2, thread_name_prefix="ingest") as pool:
        started = [pool.submit(contextvars.copy_context().run, ingest_task.fn, settings) for _ in range(2)]
        assert [future.result()["manifest_written"] for future in started] == [True, True]
    assert sorted(read_manifest(settings)["files"]) == ["raw/2025/ingest_0.csv", "raw/2025/ingest_1.csv"]
    sweep_idle_limits(idle_s=0)
