"""Where a backfill task's seconds go: timestamps from inside the flow's process and each Dask worker.

Measurement only (``bench.scale_dask --trace``). ``install(folder)`` wraps, in the process it runs in,
the calls a preprocess task makes (``models.data.preprocess.preprocess``: the work; the cache key; the
result store's lookups and writes; every HTTP request to the Prefect API; every event emitted) with
timers that append one JSON line per call to ``<folder>/<pid>.jsonl``. In a Dask worker it is a
preload (``DASK_DISTRIBUTED__WORKER__PRELOAD`` or ``dask worker --preload bench.dask_trace``) that also
times every unpickling (the first task's brings the imports of Prefect and the project) and the
task's Dask transitions. Wrappers are installed lazily, once their module is imported, so the tracer
itself imports nothing that a cold worker would not. ``breakdown`` turns the lines into one table.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

TRACE_DIR = "TO_BIKES_TRACE_DIR"
_lock = threading.Lock()
_installed: set[str] = set()


def record(**fields: Any) -> None:
    """One JSON line for this process (no-op without ``TO_BIKES_TRACE_DIR``)."""
    folder = os.environ.get(TRACE_DIR)
    if not folder:
        return
    fields.setdefault("pid", os.getpid())
    with _lock, (Path(folder) / f"{os.getpid()}.jsonl").open("a") as out:
        out.write(json.dumps(fields, default=str) + "\n")


def current_key() -> str | None:
    """The Dask key of the task running in this thread, else the Prefect task run id, else None."""
    try:
        from distributed.worker import thread_state

        key = getattr(thread_state, "key", None)
        if key is not None:
            return str(key)
    except ImportError:
        pass
    if "prefect.context" in sys.modules:
        ctx = sys.modules["prefect.context"].TaskRunContext.get()
        if ctx is not None:
            return str(ctx.task_run.id)
    return None


def timed(kind: str, function: Any, describe: Any = None) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.time()
        try:
            return function(*args, **kwargs)
        finally:
            extra = describe(*args, **kwargs) if describe else {}
            record(kind=kind, key=current_key(), start=start, stop=time.time(), **extra)

    wrapper.__traced__ = True  # type: ignore[attr-defined]
    return wrapper


def wrap(owner: Any, name: str, kind: str, describe: Any = None) -> None:
    original = getattr(owner, name)
    if not getattr(original, "__traced__", False):
        setattr(owner, name, timed(kind, original, describe))


def _request(_client: Any, request: Any, *args: Any, **kwargs: Any) -> dict[str, str]:
    return {"what": f"{request.method} {request.url.path}"}


def _task_run_id(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"task_run_id": str(kwargs.get("task_run_id"))}


def _period(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"period": kwargs.get("period")}


def install_loaded() -> None:
    """Wrap whatever of the traced calls' modules is imported by now (each once)."""
    mods = sys.modules
    if "models.data.preprocess" in mods and "work" not in _installed:
        wrap(mods["models.data.preprocess"], "preprocess", "work", _period)
        _installed.add("work")
    if "prefect.task_engine" in mods and "engine" not in _installed:
        engine = mods["prefect.task_engine"].BaseTaskRunEngine
        wrap(engine, "compute_transaction_key", "cache-key")
        store = mods["prefect.results"].ResultStore
        wrap(store, "exists", "result-exists")
        wrap(store, "read", "result-read")
        wrap(store, "persist_result_record", "result-write")
        base = mods["prefect.client.base"]
        wrap(base.PrefectHttpxSyncClient, "send", "api", _request)
        wrap(base.PrefectHttpxAsyncClient, "send", "api", _request)
        events = mods["prefect.events.worker"].EventsWorker
        wrap(events, "send", "event")
        wrap(mods["orchestration.flows.pipeline"], "record_output", "output-checksum")
        for module in ("prefect.task_engine", "prefect.task_runners", "prefect_dask.client"):
            if module in mods and hasattr(mods[module], "run_task_sync"):
                wrap(mods[module], "run_task_sync", "task-run", _task_run_id)
        _installed.add("engine")


def install(folder: Path | str) -> None:
    """Trace this process into ``folder`` (the flow's process: call before the flow runs)."""
    os.environ[TRACE_DIR] = str(folder)
    import prefect.events.worker
    import prefect.task_engine  # noqa: F401

    import models.data.preprocess  # noqa: F401
    import orchestration.flows.pipeline  # noqa: F401

    install_loaded()
    _trace_submissions()


def _trace_submissions() -> None:
    """The flow's side: when each task was submitted to Dask (its key) and the cluster's start."""
    import distributed
    from prefect_dask.client import PrefectDaskClient

    if getattr(PrefectDaskClient.submit, "__traced__", False):
        return
    submit = PrefectDaskClient.submit

    def traced_submit(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.time()
        future = submit(self, *args, **kwargs)
        record(kind="submit", key=str(future.key), start=start, stop=time.time())
        return future

    traced_submit.__traced__ = True  # type: ignore[attr-defined]
    PrefectDaskClient.submit = traced_submit
    wrap(distributed.LocalCluster, "__init__", "cluster-start")
    wrap(PrefectDaskClient, "__init__", "client-connect")


class TraceWorker:
    """Dask WorkerPlugin: the worker's start and each task's transitions; wraps calls once loaded."""

    name = "to-bikes-trace"

    def setup(self, worker: Any) -> None:
        import psutil

        record(kind="worker", worker=worker.name, created=psutil.Process().create_time(), ready=time.time())

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        now = time.time()
        if finish == "executing" and "models.data.preprocess" not in sys.modules:
            started = time.time()  # the task imports it in its body: import it here, timed, to trace it
            import models.data.preprocess  # noqa: F401

            record(kind="import-work-modules", key=str(key), start=started, stop=time.time())
        if finish in ("executing", "memory", "waiting", "ready"):
            install_loaded()
            record(kind="transition", key=str(key), start_state=start, state=finish, at=now)


def _trace_unpickling() -> None:
    from distributed.protocol import pickle as dask_pickle

    original = dask_pickle.loads

    def loads(*args: Any, **kwargs: Any) -> Any:
        started = time.time()
        before = len(sys.modules)
        try:
            return original(*args, **kwargs)
        finally:
            stop = time.time()
            if stop - started > 0.05:
                record(kind="unpickle", start=started, stop=stop, new_modules=len(sys.modules) - before)

    dask_pickle.loads = loads


def dask_setup(worker: Any) -> None:
    """Preload entry point: trace this worker (before any task reaches it)."""
    _trace_unpickling()
    worker.plugins[TraceWorker.name] = plugin = TraceWorker()
    plugin.setup(worker)
