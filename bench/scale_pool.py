"""The scale section's physical-limit figure: the same periods on two warm processes, no Prefect, no Dask.

``models.data.preprocess.preprocess`` per year, S3 in and S3 out as the tasks do, on a
``ProcessPoolExecutor`` of two processes started and warmed (the module imported) before the timing,
the largest year first. What two processes can gain over one on this machine at this moment, with no
orchestration at all: the ceiling for the LocalCluster and the external cluster measured beside it.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

WORKERS = 2


def _warm() -> None:
    import models.data.preprocess  # noqa: F401


def _preprocess_year(settings: Any, year: str) -> dict[str, Any]:
    from models.data.preprocess import preprocess

    summary = preprocess(
        settings.s3_uri(settings.raw_prefix, year) + "/",
        settings.s3_uri(settings.processed_prefix, year, "trips.parquet"),
        period=year,
        settings=settings,
    )
    return summary.to_dict()


def start_pool() -> ProcessPoolExecutor:
    """Two spawned processes, each with ``models.data.preprocess`` imported (waited for)."""
    pool = ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"), initializer=_warm)
    for future in [pool.submit(time.sleep, 0.5) for _ in range(WORKERS)]:
        future.result()
    return pool


def largest_first(sample: Path, years: list[str]) -> list[str]:
    """The years by the bytes of their raw files, largest first (as the flow orders them)."""
    size = {year: sum(p.stat().st_size for p in (sample / year).iterdir()) for year in years}
    return sorted(years, key=lambda year: -size[year])


def timed_pool(pool: ProcessPoolExecutor, stack: Any, years: list[str], prefix: str) -> dict[str, Any]:
    """Every year on the pool into ``prefix``; wall seconds, rows kept and the outputs' URIs."""
    settings = stack.settings().model_copy(update={"processed_prefix": prefix})
    started = time.perf_counter()
    rows = list(pool.map(_preprocess_year, [settings] * len(years), years))
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "rows_out": sum(r["rows_out"] for r in rows),
        "cached": False,
        "outputs": {r["period"]: [r["output"], r["quarantine"]] for r in rows},
    }
