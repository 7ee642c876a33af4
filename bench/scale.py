"""The ``scale`` section of ``make bench`` (issue 18): Dask fan-out and the Prefect server's database.

Two measurements, each in agent/.venv children with stacks of their own on free ports:
``bench.scale_dask`` times one backfill over every year of a generated sample sequentially, on a
LocalCluster of two workers and on an external two-worker cluster; ``bench.concurrent_runs`` submits
ten pipeline runs at once to a Prefect server on SQLite and on PostgreSQL and times them to the last
final state. Rows: cluster seconds against sequential seconds, PostgreSQL runs/minute against SQLite's.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

from bench.measure import ROOT

log = logging.getLogger(__name__)

AGENT_PYTHON = ROOT / "agent" / ".venv" / "bin" / "python"
SCALE_ROWS = 9_000_000  # 9 years (2017-2025) of the generated sample; 2025 holds half of them
SCALE_GOAL = 1.2  # x the sequential backfill (2 cores, the sequential path keeps ~1.4 of them busy)
CONCURRENT_RUNS = 10


def run_agent(module: str, args: list[str], log_path: Path) -> dict[str, Any]:
    """``agent/.venv/bin/python -m module args``; its last stdout line as JSON (stderr to the log)."""
    with log_path.open("w") as err:
        done = subprocess.run(
            [str(AGENT_PYTHON), "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True
        )
    if done.returncode != 0:
        raise RuntimeError(f"{module} exited {done.returncode}; see {log_path}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def dask_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    """LocalCluster(2) and the external cluster against the sequential run, as speed-ups."""
    sequential = found["sequential"]["seconds"]
    what = f"backfill of {len(found['years'])} years ({found['rows']:,} rows), {found['cores']} cores"
    rows = []
    for key, label in (
        ("local_cluster", "LocalCluster(2 workers)"),
        ("external_cluster", "external 2-worker cluster"),
    ):
        seconds = found[key]["seconds"]
        rows.append(
            {
                "measure": f"{what}: {label}",
                "value": f"{seconds:.1f} s",
                "reference": f"sequential, same flow and tasks: {sequential:.1f} s",
                "ratio": sequential / seconds,
                "goal": f">= {SCALE_GOAL}x, outputs identical",
                "holds": sequential / seconds >= SCALE_GOAL and found[key].get("outputs_identical", False),
            }
        )
    if "process_pool" in found:
        seconds = found["process_pool"]["seconds"]
        rows.append(
            {
                "measure": f"{what}: 2 warm processes, no Prefect or Dask (physical-limit figure)",
                "value": f"{seconds:.1f} s",
                "reference": f"sequential, same flow and tasks: {sequential:.1f} s",
                "ratio": sequential / seconds,
                "goal": "- (no goal)",
                "holds": None,
            }
        )
    return rows


def database_row(found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Concurrent pipeline runs per minute on PostgreSQL against SQLite."""
    pg, lite = found["postgres"], found["sqlite"]
    completed = pg["states"].get("Completed", 0) == pg["runs"]
    return {
        "measure": f"{pg['runs']} pipeline runs at once, Prefect on PostgreSQL",
        "value": f"{pg['runs_per_minute']:.2f} runs/min",
        "reference": f"SQLite: {lite['runs_per_minute']:.2f} runs/min, states {lite['states']}",
        "ratio": pg["runs_per_minute"] / lite["runs_per_minute"],
        "goal": "all Completed, no ERROR, FATAL or PANIC in the PostgreSQL server's log",
        "holds": completed and pg["postgres_errors"] == 0,
    }


def scale_notes(dask: dict[str, Any], runs: dict[str, dict[str, Any]]) -> list[str]:
    ways = ("sequential", "local_cluster", "external_cluster")
    timed = [*ways, "process_pool"] if "process_pool" in dask else ways
    rounds = "; ".join(f"{way} {dask[way]['rounds']}" for way in timed)
    loads = "; ".join(
        f"round {r['round']}: {r['before'][0]:.1f} -> {r['after'][0]:.1f}" for r in dask.get("load", [])
    )
    notes = [
        f"Scale (Dask): rows kept in total by the three ways "
        f"({dask['sequential']['rows_out']:,} / {dask['local_cluster']['rows_out']:,} / "
        f"{dask['external_cluster']['rows_out']:,} rows kept), every period's Parquet and quarantine "
        f"identical to the sequential run's (S3 ETag and size): "
        f"{all(dask[w].get('outputs_identical') for w in ways)}; cluster times include starting the "
        "LocalCluster's worker processes, not the external cluster's (its workers start with "
        "`--preload orchestration.flows.dask_workers`).",
        f"Scale (Dask): seconds per interleaved round: {rounds}; 1-minute load average {loads}.",
    ]
    for way, found in dask.get("breakdown", {}).items():
        overhead = found["per_task"].get("Prefect overhead in the task (all but the work)", {})
        notes.append(
            f"Scale (Dask, {way}, last round): per task {overhead.get('median', 0):.2f} s of Prefect "
            f"overhead (median), {found['once']['imports in workers (first unpickling), max']:.2f} s of "
            "imports in a worker's first task; the full table: bench/results.json, scale.dask.breakdown."
        )
    return notes
    for db, found in runs.items():
        notes.append(
            f"Scale (Prefect on {db}): {found['runs']} runs, states {found['states']}, lost {found['lost']}, "
            f"duplicated {found['duplicated']}, {found['seconds']:.0f} s to the last final state, "
            f"'database is locked' in the server log {found['database_is_locked']} time(s)."
        )
    return notes


def measure_scale(ctx: Any) -> dict[str, Any]:
    """The scale rows and notes; 'not measured' with the reason when a child fails."""
    try:
        args = [str(SCALE_ROWS), str(ctx.work / "scale"), "--rounds", str(ctx.repeats)]
        args += ["--trace", str(ctx.work / "scale-trace")]
        dask = run_agent("bench.scale_dask", args, ctx.log("scale-dask"))
        runs = {
            db: run_agent(
                "bench.concurrent_runs", ["--db", db, "--runs", str(CONCURRENT_RUNS)], ctx.log(f"scale-{db}")
            )
            for db in ("sqlite", "postgres")
        }
    except (RuntimeError, OSError, ValueError) as exc:
        log.warning("scale not measured: %s", exc)
        return {"rows": [], "notes": [f"Scale: not measured ({exc})."]}
    return {
        "dask": dask,
        "runs": runs,
        "rows": [*dask_rows(dask), database_row(runs)],
        "notes": scale_notes(dask, runs),
    }
