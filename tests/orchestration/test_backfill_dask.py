"""The backfill flow on Dask: a real two-worker cluster and a LocalCluster, against the sequential path.

``bench.scale_dask.external_cluster`` starts ``dask scheduler`` and two ``dask worker`` processes from
agent/.venv on 127.0.0.1 (stopped by pid, whatever happens); the test saves blocks pointing at them
and runs a three-year backfill of a small generated sample in this process. Dask's own records (each
worker's transition log) must show both workers finished preprocess tasks, and every period's
Parquet and quarantine must equal what ``models.data.preprocess.preprocess`` writes when called
directly, one period after another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.scale_dask import cluster_env, external_cluster
from stack.embedded import StackEnv
from tests.orchestration.e2e import upload_sample

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "to-bikes-dask"
YEARS = ("2023", "2024", "2025")
COMPARED = ("rows_in", "rows_out", "quarantined", "by_reason", "by_era", "kept_with_nulls", "label_share")


def finished_keys(address: str) -> dict[str, list[str]]:
    """Per worker name: the keys of tasks that reached ``memory`` there (the worker's own log)."""
    from distributed import Client

    def keys(dask_worker: Any) -> tuple[str, list[str]]:
        done = [str(entry[0]) for entry in dask_worker.state.log if len(entry) > 2 and entry[2] == "memory"]
        return dask_worker.name, done

    with Client(address, timeout=60) as client:
        return dict(client.run(keys).values())


def warm_records(address: str) -> dict[str, tuple[dict[str, Any] | None, float | None]]:
    """Per worker name: ``WarmWorker``'s record and when the first task reached it (its own log)."""
    from distributed import Client

    def record(dask_worker: Any) -> tuple[str, tuple[dict[str, Any] | None, float | None]]:
        arrived = [entry[-1] for entry in dask_worker.state.log if entry[1] == "compute-task"]
        return dask_worker.name, (getattr(dask_worker, "to_bikes_warm", None), min(arrived, default=None))

    with Client(address, timeout=60) as client:
        return dict(client.run(record).values())


@pytest.fixture(scope="module")
def dask_stack(local_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """Three years of a small sample under raw/ of a bucket of this module's own."""
    upload_sample(local_stack, tmp_path_factory.mktemp("dask-sample"), bucket=BUCKET, seed=5, years=YEARS)
    yield local_stack


def run_backfill(stack: StackEnv, **updates: Any) -> list[dict[str, Any]]:
    """Save the blocks with ``updates`` (bucket, prefix, Dask settings) and run the flow in this process."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from orchestration.deploy.blocks import save_all
    from orchestration.flows.backfill import backfill_flow

    settings = stack.settings().model_copy(update={"bucket": BUCKET, **updates})
    with temporary_settings(updates={PREFECT_API_URL: stack["PREFECT_API_URL"]}):
        save_all(settings)
        return backfill_flow(periods=list(YEARS))


def sequential_outputs(stack: StackEnv, folder: Path) -> dict[str, Any]:
    """``models.data.preprocess.preprocess`` per year, one after another, into a local folder."""
    from models.data.preprocess import preprocess

    settings = stack.settings().model_copy(update={"bucket": BUCKET})
    return {
        year: preprocess(
            settings.s3_uri("raw", year) + "/",
            str(folder / year / "trips.parquet"),
            period=year,
            settings=settings,
        )
        for year in YEARS
    }


def read_frame(uri: str, stack: StackEnv, folder: Path) -> pd.DataFrame:
    """A Parquet file, local or on the stack's S3 (downloaded first)."""
    from models.core.storage import download_file

    if not uri.startswith("s3://"):
        return pd.read_parquet(uri)
    return pd.read_parquet(
        download_file(uri, folder / uri.rsplit("/", 2)[-2] / Path(uri).name, stack.settings())
    )


def assert_same_as_sequential(
    rows: list[dict[str, Any]], reference: dict[str, Any], stack: StackEnv, folder: Path
) -> None:
    assert [row["period"] for row in rows] == list(YEARS)
    assert sum(row["quarantined"] for row in rows) > 0  # the sample's broken rows went somewhere
    for row in rows:
        expected = reference[row["period"]]
        assert {k: row[k] for k in COMPARED} == {k: getattr(expected, k) for k in COMPARED}
        assert row["rows_out"] > 0
        for key in ("output", "quarantine"):
            found, wanted = (
                read_frame(row[key], stack, folder),
                read_frame(getattr(expected, key), stack, folder),
            )
            pd.testing.assert_frame_equal(found, wanted)


@pytest.fixture(scope="module")
def reference(dask_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return sequential_outputs(dask_stack, tmp_path_factory.mktemp("sequential"))


def test_backfill_on_a_two_worker_cluster_equals_the_sequential_run(
    dask_stack: StackEnv, reference: dict[str, Any], tmp_path: Path
) -> None:
    env = cluster_env(dask_stack["PREFECT_API_URL"], tmp_path / "prefect-home")
    with external_cluster(env, tmp_path) as address:
        rows = run_backfill(dask_stack, processed_prefix="processed-cluster", dask_address=address)
        keys = finished_keys(address)
    assert sorted(keys) == ["worker-1", "worker-2"]
    # Only the flow submitted work to this cluster: its three preprocess tasks, spread over both workers.
    assert all(keys.values()), keys
    assert sum(len(done) for done in keys.values()) == len(YEARS), keys
    assert [row["cached"] for row in rows] == [False] * len(YEARS)
    assert_same_as_sequential(rows, reference, dask_stack, tmp_path)


def test_the_flow_warms_cold_workers_before_their_first_task(dask_stack: StackEnv, tmp_path: Path) -> None:
    """Workers started without the preload: the flow's ``WarmWorker`` imports Prefect and the task's
    modules on each before a task reaches it (issue 29), and the result is unchanged."""
    env = cluster_env(dask_stack["PREFECT_API_URL"], tmp_path / "prefect-home")
    with external_cluster(env, tmp_path) as address:
        rows = run_backfill(dask_stack, processed_prefix="processed-warm", dask_address=address)
        records = warm_records(address)
    assert sorted(records) == ["worker-1", "worker-2"]
    for name, (warm, first_task) in records.items():
        assert warm is not None, f"{name} was never warmed"
        assert first_task is not None and warm["ready"] <= first_task, (name, warm, first_task)
    assert [row["rows_out"] > 0 for row in rows] == [True] * len(YEARS)


def test_backfill_on_a_local_cluster_equals_the_sequential_run_then_is_cached(
    dask_stack: StackEnv, reference: dict[str, Any], tmp_path: Path
) -> None:
    rows = run_backfill(dask_stack, processed_prefix="processed-local", dask_workers=2)
    assert [row["cached"] for row in rows] == [False] * len(YEARS)
    assert_same_as_sequential(rows, reference, dask_stack, tmp_path)
    again = run_backfill(dask_stack, processed_prefix="processed-local", dask_workers=2)
    assert [row["cached"] for row in again] == [True] * len(YEARS)
    assert [row["rows_out"] for row in again] == [row["rows_out"] for row in rows]
