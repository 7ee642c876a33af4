"""The ``backfill`` flow: many periods preprocessed in one flow run, their tasks fanned out on Dask.

Each period is one run of ``orchestration.flows.pipeline.preprocess_period`` (the same task, cache and result
storage as the ``preprocess`` flow) submitted through prefect-dask's ``DaskTaskRunner``: by default a
``LocalCluster`` on the flow run's machine (``dask_workers`` processes, 0 = one per core), or the
existing cluster at ``dask_address`` (``TO_BIKES_DASK_ADDRESS``, saved in the config block). Tasks
receive S3 URIs and settings and return the JSON summary; no DataFrame crosses the cluster. The
flow ends with a table artifact ``backfill`` (one row per period) that ``make backfill`` prints.
"""

from __future__ import annotations

import time
from typing import Any

import dask
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from models.core.contracts import PreprocessSummary
from models.core.names import DEFAULT_MIN_DURATION_S
from models.core.periods import check_period
from models.core.settings import LOCAL_HOST, Settings
from orchestration.flows.api_loss import ending_on_api_loss
from orchestration.flows.caching import find_output_problem, list_object_checksums, results_storage
from orchestration.flows.pipeline import preprocess_period, start_flow_run
from orchestration.flows.reports import publish_quality

TABLE_KEY = "backfill"
WARM_PRELOAD = "orchestration.flows.dask_workers"
TABLE_COLUMNS = ("period", "rows_in", "rows_out", "quarantined", "other_period", "seconds", "cached")


def build_task_runner(settings: Settings, sequential: bool = False) -> Any:
    """Dask at ``dask_address``, else a LocalCluster on 127.0.0.1; ``sequential``: one thread, in process."""
    if sequential:
        return ThreadPoolTaskRunner(max_workers=1)
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    cluster = {
        "processes": True,
        "threads_per_worker": 1,
        "host": LOCAL_HOST,
        "dashboard_address": None,
        # each worker imports what a task needs as it starts (after any preload of the Dask config)
        "preload": [*dask.config.get("distributed.worker.preload", []), WARM_PRELOAD],
    }
    if settings.dask_workers:
        cluster["n_workers"] = settings.dask_workers
    return DaskTaskRunner(cluster_kwargs=cluster)


def warm_workers(runner: Any) -> None:
    """Register ``WarmWorker`` on a Dask runner's cluster (a no-op on workers already warm)."""
    if isinstance(runner, DaskTaskRunner):
        from orchestration.flows.dask_workers import WarmWorker

        runner.client.register_plugin(WarmWorker())


def period_parameters(settings: Settings, period: str, min_duration_s: int) -> dict[str, Any]:
    """The preprocess task's parameters for one period: raw ``<year>/`` in, ``processed/<period>/`` out."""
    return {
        "input_uri": settings.s3_uri(settings.raw_prefix, period[:4]) + "/",
        "output_uri": settings.s3_uri(settings.processed_prefix, period, "trips.parquet"),
        "period": period,
        "min_duration_s": min_duration_s,
        "settings": settings,
    }


def largest_first(parameters: list[dict[str, Any]]) -> list[int]:
    """The periods' indices, the largest raw input first (ties in the given order).

    Dask starts tasks in the order they are submitted; a year holding half the rows submitted last
    would run alone on one worker at the end while the others wait (longest-processing-time first).
    """
    sizes: dict[str, int] = {}
    for params in parameters:
        uri = params["input_uri"]
        if uri not in sizes:
            sizes[uri] = sum(size for _, _, size in list_object_checksums(uri, params["settings"]))
    return sorted(range(len(parameters)), key=lambda i: -sizes[parameters[i]["input_uri"]])


def submit_periods(runner: Any, parameters: list[dict[str, Any]], refresh: bool = False) -> list[Any]:
    """One cached preprocess task per period on ``runner``, the largest first; their final states,
    in the periods' order."""
    task = preprocess_period.with_options(
        result_storage=results_storage(), result_serializer="json", refresh_cache=refresh or None
    )
    order = largest_first(parameters) if len(parameters) > 1 else list(range(len(parameters)))
    futures = {i: runner.submit(task, parameters[i]) for i in order}
    for future in futures.values():
        future.wait()
    return [futures[i].state for i in range(len(parameters))]


def run_periods(runner: Any, parameters: list[dict[str, Any]]) -> list[tuple[Any, float]]:
    """States and seconds per period; a cached period whose Parquet is not the one it recorded (missing,
    replaced: ``orchestration.flows.caching.find_output_problem``) is computed again."""
    started = time.monotonic()
    states = submit_periods(runner, parameters)
    seconds = [time.monotonic() - started] * len(states)
    stale = [
        i
        for i, (state, params) in enumerate(zip(states, parameters, strict=True))
        if state.name == "Cached" and find_output_problem(state.result(), params["settings"])
    ]
    if stale:
        get_run_logger().warning("%s cached output(s) not as recorded; preprocessing them again", len(stale))
        started = time.monotonic()
        redone = submit_periods(runner, [parameters[i] for i in stale], refresh=True)
        for i, state in zip(stale, redone, strict=True):
            states[i], seconds[i] = state, time.monotonic() - started
    return list(zip(states, seconds, strict=True))


def task_seconds(state: Any, waited: float) -> float:
    """The task run's run time from Prefect's record (a cache hit: reading its result), else the wait."""
    from prefect.client.orchestration import get_client

    task_run_id = state.state_details.task_run_id
    if task_run_id is None:
        return waited
    with get_client(sync_client=True) as client:
        return client.read_task_run(task_run_id).total_run_time.total_seconds()


def summarize_period(state: Any, waited: float) -> dict[str, Any]:
    """One period's summary (raises the task's error if it failed), its seconds and whether cached."""
    summary = PreprocessSummary.from_dict(state.result())
    cached = state.name == "Cached"
    publish_quality(summary, summary.period or "", cached)
    return {**summary.to_dict(), "seconds": round(task_seconds(state, waited), 2), "cached": cached}


@flow(name="backfill")
def backfill_flow(
    periods: list[str], min_duration_s: int = DEFAULT_MIN_DURATION_S, sequential: bool = False
) -> list[dict[str, Any]]:
    """Preprocess every period (``YYYY`` or ``YYYY-MM``) on Dask; one summary per period, in order.

    ``sequential`` runs the same tasks one at a time in the flow run's process (the reference path).
    """
    settings = start_flow_run()
    with ending_on_api_loss(settings):
        checked = [check_period(str(period), "Backfill period") for period in periods]
        parameters = [period_parameters(settings, period, min_duration_s) for period in checked]
        with build_task_runner(settings, sequential) as runner:
            warm_workers(runner)
            results = run_periods(runner, parameters)
        rows = [summarize_period(state, waited) for state, waited in results]
        table = [{column: row[column] for column in TABLE_COLUMNS} for row in rows]
        create_table_artifact(key=TABLE_KEY, table=table, description=f"backfill of {len(rows)} period(s)")
    get_run_logger().info(
        "%s period(s): %s rows kept, %s quarantined",
        len(rows),
        sum(r["rows_out"] for r in rows),
        sum(r["quarantined"] for r in rows),
    )
    return rows
