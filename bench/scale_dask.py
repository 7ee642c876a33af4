"""A multi-year backfill several ways, from agent/.venv: ``python -m bench.scale_dask ROWS WORK_FOLDER``.

Starts S3 and Prefect on free ports (state under ``WORK_FOLDER/stack``), uploads every year of a
generated sample (``ROWS`` rows in all, generated once into ``bench/work/input-<rows>-7``), then runs
``orchestration.flows.backfill.backfill_flow`` over all years: one task at a time in the flow's process
(sequential), on a LocalCluster of two worker processes, and on an external cluster (``dask scheduler``
+ two ``dask worker --preload orchestration.flows.dask_workers``, started fresh for each run, outside
the timing); and, as the physical limit, ``models.data.preprocess`` on two warm processes without
Prefect or Dask (``bench.scale_pool``). ``--rounds`` interleaves them (medians; the load average around
each round); each run writes a processed prefix of its own (no cache hit), and every period's Parquet
and quarantine is compared with the first sequential run's by ETag and size. ``--trace`` records where
each task's seconds go (``bench.dask_trace``, ``bench.dask_breakdown``). Prints one JSON line; stops
exactly what it started. ``external_cluster`` is also the test's cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
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
def external_cluster(
    env: dict[str, str], logs: Path, workers: int = 2, preload: list[str] | None = None
) -> Iterator[str]:
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
        [
            str(DASK),
            "worker",
            address,
            "--name",
            f"worker-{n}",
            "--nthreads",
            "1",
            "--no-nanny",
            *common,
            *(preload or []),
        ]
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
        "outputs": {r["period"]: [r["output"], r["quarantine"]] for r in rows},
    }


def output_versions(stack: Any, found: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """(ETag, size) of each period's processed Parquet and quarantine, in period order."""
    client = stack.s3_client()
    versions = {}
    for period, uris in sorted(found["outputs"].items()):
        heads = [client.head_object(Bucket=stack.bucket, Key=uri.split("/", 3)[3]) for uri in uris]
        versions[period] = [(h["ETag"].strip('"'), int(h["ContentLength"])) for h in heads]
    return versions


def traced(trace: Path | None, name: str) -> Path | None:
    """A fresh trace folder for one backfill (``bench.dask_trace``), or None when not tracing."""
    if trace is None:
        return None
    folder = trace / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["TO_BIKES_TRACE_DIR"] = str(folder)
    return folder


WAYS = ("sequential", "local_cluster", "external_cluster", "process_pool")


def run_way(
    stack: Any, years: list[str], way: str, prefix: str, work: Path, trace: Path | None, pool: Any = None
) -> dict[str, Any]:
    """One backfill ``way`` into ``processed_prefix`` ``prefix`` (a fresh external cluster for that way)."""
    if way == "process_pool":
        from bench.scale_pool import largest_first, timed_pool

        return timed_pool(pool, stack, largest_first(Path(os.environ["TO_BIKES_SAMPLE"]), years), prefix)
    if way == "sequential":
        return timed_backfill(stack, years, processed_prefix=prefix, sequential=True)
    if way == "local_cluster":
        return timed_backfill(stack, years, processed_prefix=prefix, dask_workers=2)
    env = cluster_env(stack["PREFECT_API_URL"], work / "dask-home")
    if trace is not None:
        env |= {"TO_BIKES_TRACE_DIR": os.environ["TO_BIKES_TRACE_DIR"]}
    preload = ["--preload", "orchestration.flows.dask_workers"]  # warm workers, as README's scaling-out says
    if trace is not None:
        preload += ["--preload", "bench.dask_trace"]
    with external_cluster(env, work / "logs", preload=preload) as address:
        return timed_backfill(stack, years, processed_prefix=prefix, dask_address=address)


def start_reference_pool(ways: tuple[str, ...]) -> Any:
    """The warm two-process pool of ``bench.scale_pool`` when that way is measured, else None."""
    if "process_pool" not in ways:
        return None
    from bench.scale_pool import start_pool

    return start_pool()


def run_rounds(
    stack: Any,
    years: list[str],
    ways: tuple[str, ...],
    rounds: int,
    work: Path,
    trace: Path | None,
    pool: Any,
    runs: dict[str, list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """``rounds`` × every way in turn (appended to ``runs``); the load average around each round."""
    load = []
    for n in range(rounds):
        load.append({"round": n + 1, "before": os.getloadavg()})
        for way in ways:
            folder = traced(trace, f"{way}-{n + 1}")
            run = run_way(stack, years, way, f"{way}-{n + 1}", work, trace, pool)
            run["versions"] = output_versions(stack, run)
            run["trace"] = str(folder) if folder else None
            runs[way].append(run)
        load[-1]["after"] = os.getloadavg()
    return load


def measure(
    rows: int, work: Path, rounds: int = 1, trace: Path | None = None, ways: tuple[str, ...] = WAYS
) -> dict[str, Any]:
    """Sequential, LocalCluster(2) and external two-worker cluster over every year of the sample,
    ``rounds`` times interleaved (medians); the load average before and after each round."""
    from bench.inputs import ensure_sample
    from stack.embedded import make_stack_env, running_stack

    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    sample = ensure_sample(PROJECT_ROOT / "bench" / "work", rows, 7)  # shared with the other sections
    years = sorted(p.name for p in sample.iterdir() if p.name.isdigit())
    os.environ["TO_BIKES_SAMPLE"] = str(sample)
    stack = make_stack_env(work / "stack", ("s3", "prefect"))
    os.environ["PREFECT_API_URL"] = stack["PREFECT_API_URL"]
    if trace is not None:
        import dask

        from bench import dask_trace

        dask.config.set({"distributed.worker.preload": ["bench.dask_trace"]})
        dask_trace.install(traced(trace, "setup"))
    with running_stack(stack, ("s3", "prefect")):
        client = stack.s3_client()
        for year in years:
            for path in sorted((sample / year).iterdir()):
                client.upload_file(str(path), stack.bucket, f"raw/{year}/{path.name}")
        found: dict[str, Any] = {"years": years, "rows": rows, "cores": len(os.sched_getaffinity(0))}
        runs: dict[str, list[dict[str, Any]]] = {way: [] for way in ways}
        pool = start_reference_pool(ways)
        try:
            found["load"] = run_rounds(stack, years, ways, rounds, work, trace, pool, runs)
        finally:
            if pool is not None:
                pool.shutdown()
        reference = runs["sequential"][0]["versions"]
        for way in ways:
            seconds = [r["seconds"] for r in runs[way]]
            found[way] = {
                "seconds": statistics.median(seconds),
                "rounds": seconds,
                "rows_out": runs[way][0]["rows_out"],
                "cached": any(r["cached"] for r in runs[way]),
                "outputs_identical": all(r["versions"] == reference for r in runs[way]),
                "traces": [r["trace"] for r in runs[way]],
            }
    return found


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench.scale_dask")
    parser.add_argument("rows", type=int)
    parser.add_argument("work", type=Path)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of the ways (medians)")
    parser.add_argument("--trace", type=Path, help="trace every backfill into this folder (bench.dask_trace)")
    parser.add_argument("--ways", default=",".join(WAYS), help="which of them, comma-separated")
    args = parser.parse_args(argv)
    ways = tuple(args.ways.split(","))
    trace = args.trace.resolve() if args.trace else None
    found = measure(args.rows, args.work.resolve(), args.rounds, trace, ways)
    if args.trace:
        from bench.dask_breakdown import breakdown

        traced_ways = [way for way in ways if way != "process_pool"]  # no Prefect there to trace
        found["breakdown"] = {way: breakdown(Path(found[way]["traces"][-1])) for way in traced_ways}
    return found


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])), flush=True)
