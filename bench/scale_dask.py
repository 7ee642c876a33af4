"""A multi-year backfill three ways, from agent/.venv: ``python -m bench.scale_dask ROWS WORK_FOLDER``.

Starts S3 and Prefect on free ports (state under ``WORK_FOLDER/stack``), uploads every year of a
generated sample (``ROWS`` rows in all), then runs ``orchestration.flows.backfill.backfill_flow`` over all
years: one task at a time in the flow's process (sequential), on a LocalCluster of two worker
processes, and on an external cluster (``dask scheduler`` + two ``dask worker`` started here), each
into a processed prefix of its own so none is a cache hit. Prints one JSON line of wall seconds and
rows kept per way; stops exactly what it started. ``external_cluster`` is also the test's cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models.core.settings import PROJECT_ROOT

DASK = Path(sys.executable).parent / "dask"
_PRIVATE = ("TO_BIKES_", "AWS_", "PREFECT_")


@contextlib.contextmanager
def external_cluster(env: dict[str, str], logs: Path, workers: int = 2) -> Iterator[str]:
    """``dask scheduler`` and ``workers`` × ``dask worker`` (one thread, no nanny) on 127.0.0.1.

    Yields the scheduler address once every worker has joined; each process is stopped by its pid.
    """
    from distributed import Client

    from stack.embedded import free_ports

    port = free_ports(1)[0]
    address = f"tcp://127.0.0.1:{port}"
    common = ["--host", "127.0.0.1", "--no-dashboard"]
    commands = [[str(DASK), "scheduler", "--port", str(port), *common]]
    commands += [
        [str(DASK), "worker", address, "--name", f"worker-{n}", "--nthreads", "1", "--no-nanny", *common]
        for n in range(1, workers + 1)
    ]
    started: list[subprocess.Popen] = []
    try:
        for n, command in enumerate(commands):
            with (logs / f"dask-{n}.log").open("wb") as out:
                started.append(subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=logs))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for process in reversed(started):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def cluster_env(api_url: str, home: Path) -> dict[str, str]:
    """What a Dask worker needs: the project on PYTHONPATH and the Prefect API (no other secret)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE)}
    return env | {"PYTHONPATH": str(PROJECT_ROOT), "PREFECT_API_URL": api_url, "PREFECT_HOME": str(home)}


def timed_backfill(stack: Any, years: list[str], **updates: Any) -> dict[str, Any]:
    """Blocks saved with ``updates``, then one backfill flow run in this process, timed."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from orchestration.deploy.blocks import save_all
    from orchestration.flows.backfill import backfill_flow

    sequential = updates.pop("sequential", False)
    settings = stack.settings().model_copy(update=updates)
    with temporary_settings(updates={PREFECT_API_URL: stack["PREFECT_API_URL"]}):
        save_all(settings)
        started = time.perf_counter()
        rows = backfill_flow(periods=years, sequential=sequential)
        seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "rows_out": sum(r["rows_out"] for r in rows),
        "cached": any(r["cached"] for r in rows),
    }


def measure(rows: int, work: Path) -> dict[str, Any]:
    """Sequential, LocalCluster(2) and external two-worker cluster over every year of the sample."""
    from models.sample.generate import generate_sample
    from stack.embedded import make_stack_env, running_stack

    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    generate_sample(work / "sample", seed=7, rows=rows)
    years = sorted(p.name for p in (work / "sample").iterdir() if p.name.isdigit())
    stack = make_stack_env(work / "stack", ("s3", "prefect"))
    os.environ["PREFECT_API_URL"] = stack["PREFECT_API_URL"]
    with running_stack(stack, ("s3", "prefect")):
        client = stack.s3_client()
        for year in years:
            for path in sorted((work / "sample" / year).iterdir()):
                client.upload_file(str(path), stack.bucket, f"raw/{year}/{path.name}")
        found = {"years": years, "rows": rows, "cores": len(os.sched_getaffinity(0))}
        found["sequential"] = timed_backfill(stack, years, processed_prefix="seq", sequential=True)
        found["local_cluster"] = timed_backfill(stack, years, processed_prefix="local", dask_workers=2)
        env = cluster_env(stack["PREFECT_API_URL"], work / "dask-home")
        with external_cluster(env, work / "logs") as address:
            found["external_cluster"] = timed_backfill(
                stack, years, processed_prefix="ext", dask_address=address
            )
    return found


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), Path(sys.argv[2]))), flush=True)
