"""Warm Dask workers: what a backfill task needs is imported when the worker starts, not by its first task.

A cold worker pays, inside the first preprocess task it receives, the imports of Prefect's task engine,
prefect-aws (the result storage), boto3, the project's flow module and ``models.data.preprocess``
(pyarrow, pandas): seconds that the backfill's critical path waits for. ``WarmWorker`` imports them in
its ``setup`` and records when (``worker.to_bikes_warm``). It reaches a worker three ways: as a preload
of an external cluster's workers (``dask worker --preload orchestration.flows.dask_workers``: paid at
the cluster's start, never by a flow run), as a preload of the flow's LocalCluster, and registered by the
backfill flow on whatever cluster it connects to (a no-op on a worker already warm).

A preloaded worker also writes every thread's stack to stderr on ``SIGUSR1`` (as ``to-bikes-engine`` does
for the flow run; ``make worker-stacks`` signals both): where a backfill task that seems stuck waits.
"""

from __future__ import annotations

import faulthandler
import importlib
import logging
import signal
import time
from typing import Any

from distributed import WorkerPlugin

log = logging.getLogger(__name__)

PLUGIN_NAME = "to-bikes-warm"
WARM_MODULES = (
    "prefect.task_engine",
    "prefect_aws",
    "boto3",
    "orchestration.flows.pipeline",
    "models.data.preprocess",
)


def warm_modules() -> float:
    """Import ``WARM_MODULES``; the seconds it took (nearly 0 when they are imported already)."""
    started = time.perf_counter()
    for name in WARM_MODULES:
        importlib.import_module(name)
    return time.perf_counter() - started


class WarmWorker(WorkerPlugin):
    """Imports a backfill task's modules on the worker before any task; records when (``to_bikes_warm``)."""

    name = PLUGIN_NAME
    idempotent = True  # registering it again (each flow run) does not run setup again

    def setup(self, worker: Any) -> None:
        if getattr(worker, "to_bikes_warm", None):
            return
        started = time.time()
        seconds = warm_modules()
        worker.to_bikes_warm = {"started": started, "ready": time.time(), "import_seconds": seconds}
        log.info("warm: imported %s in %.2f s", ", ".join(WARM_MODULES), seconds)


def dask_setup(worker: Any) -> None:
    """``--preload`` entry point: warm this worker as it starts (the flow then finds it warm); its
    threads' stacks on ``SIGUSR1``."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    WarmWorker().setup(worker)
