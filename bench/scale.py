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
SCALE_ROWS = 400_000
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
                "goal": "> 1x (speed-up)",
                "holds": sequential / seconds > 1,
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
    notes = [
        f"Scale (Dask): rows kept in total by the three ways "
        f"({dask['sequential']['rows_out']:,} / {dask['local_cluster']['rows_out']:,} / "
        f"{dask['external_cluster']['rows_out']:,} rows kept); cluster times include starting the "
        "LocalCluster's worker processes, not the external cluster's."
    ]
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
        dask = run_agent(
            "bench.scale_dask", [str(SCALE_ROWS), str(ctx.work / "scale")], ctx.log("scale-dask")
        )
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
