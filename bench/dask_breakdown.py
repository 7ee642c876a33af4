"""The per-task breakdown of a traced backfill (``bench.dask_trace``'s lines): where the seconds went.

Phases, per task (medians over the run's tasks) and summed: once per run, the cluster's start, each
worker process's start and its first unpickling (the imports); per task, scheduling (the worker idle
between its previous task, or the submission, and this one, imports excluded), Prefect before the
work (the cache key, the cache lookup on the result store), the work (``models.data.preprocess``),
Prefect after it (the output's checksum, the result written to S3, state reporting), and the Prefect
API requests and events among all of them.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

IMPORT_MODULES = 50  # an unpickling that imported more modules than this carried the imports
STORE = ("result-exists", "result-read")


def read_trace(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()
    ]


def seconds(entry: dict[str, Any]) -> float:
    return entry["stop"] - entry["start"]


def by_task(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per task key: its submission, transitions, worker pid and the traced calls it made."""
    tasks: dict[str, dict[str, Any]] = defaultdict(lambda: {"calls": defaultdict(list), "at": {}})
    alias = {e["task_run_id"]: e["key"] for e in lines if e["kind"] == "task-run" and e.get("key")}
    for e in lines:
        key = alias.get(e.get("key"), e.get("key")) or e.get("task_run_id")
        if key is None or e["kind"] in ("worker", "unpickle", "cluster-start", "client-connect"):
            continue
        task = tasks[key]
        if e["kind"] == "transition":
            task["at"].setdefault(e["state"], e["at"])
            task["pid"] = e["pid"]
        elif e["kind"] == "submit":
            task["submitted"] = e["start"]
        else:
            task["calls"][e["kind"]].append(e)
    return {k: t for k, t in tasks.items() if t["calls"].get("work")}


def task_phases(task: dict[str, Any], previous_end: float | None, imports: float) -> dict[str, float]:
    """One task's seconds per phase (see the module docstring)."""
    calls = task["calls"]
    work = calls["work"][0]
    total = lambda kind: sum(seconds(e) for e in calls.get(kind, []))  # noqa: E731
    run = calls.get("task-run")
    begin = task["at"].get("executing", run[0]["start"] if run else work["start"])
    end = task["at"].get("memory", run[0]["stop"] if run else work["stop"])
    ready = max(previous_end or 0.0, task.get("submitted", begin))
    before, after = work["start"] - begin - total("import-work-modules"), end - work["stop"]
    cache = total("cache-key") + sum(total(k) for k in STORE)
    post = total("output-checksum") + total("result-write")
    loaded = imports + total("import-work-modules")
    return {
        "imports (first task of a worker)": loaded,
        "scheduling": max(0.0, begin - ready - imports),
        "cache key and lookup": cache,
        "Prefect engine before the work, other": before - cache,
        "the work (models.data.preprocess)": seconds(work),
        "output checksum and result write": post,
        "Prefect engine after the work, other": after - post,
        "Prefect overhead in the task (all but the work)": before + after,
        "API requests (count)": len(calls.get("api", [])),
        "API requests (s)": total("api"),
        "events emitted (count)": len(calls.get("event", [])),
    }


def breakdown(folder: Path) -> dict[str, Any]:
    """Once-per-run seconds and the per-task phases (median and sum) of one traced backfill."""
    lines = read_trace(folder)
    workers = {e["pid"]: e for e in lines if e["kind"] == "worker"}
    imports = {pid: 0.0 for pid in workers}
    for e in lines:
        if e["kind"] == "unpickle" and e["new_modules"] > IMPORT_MODULES:
            imports[e["pid"]] = imports.get(e["pid"], 0.0) + seconds(e)
    tasks = sorted(by_task(lines).values(), key=lambda t: t["calls"]["work"][0]["start"])
    phases: list[dict[str, float]] = []
    last_end: dict[Any, float] = {}
    charged: set[Any] = set()
    for task in tasks:
        pid = task.get("pid")
        carried = imports.get(pid, 0.0) if pid is not None and pid not in charged else 0.0
        charged.add(pid)
        phases.append(task_phases(task, last_end.get(pid), carried))
        last_end[pid] = task["at"].get("memory", task["calls"]["work"][0]["stop"])
    once = {
        "cluster start (LocalCluster, in the flow)": sum(
            seconds(e) for e in lines if e["kind"] == "cluster-start"
        ),
        "client connect": sum(seconds(e) for e in lines if e["kind"] == "client-connect"),
        "worker start (process created -> ready), max": max(
            (w["ready"] - w["created"] for w in workers.values()), default=0.0
        ),
        "imports in workers (first unpickling), max": max(imports.values(), default=0.0),
    }
    names = list(phases[0]) if phases else []
    per_task = {
        n: {"median": statistics.median(p[n] for p in phases), "sum": sum(p[n] for p in phases)}
        for n in names
    }
    return {"once": once, "tasks": len(phases), "per_task": per_task}


def breakdown_table(found: dict[str, dict[str, Any]]) -> str:
    """Markdown: one column pair (median per task, sum) per way the backfill ran."""
    ways = list(found)
    head = "| phase | " + " | ".join(f"{w}: per task | {w}: sum" for w in ways) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(ways)]
    for name in found[ways[0]]["once"]:
        lines.append(f"| {name} | " + " | ".join(f"{found[w]['once'][name]:.2f} | -" for w in ways) + " |")
    for name in found[ways[0]]["per_task"]:
        cells = [found[w]["per_task"].get(name, {"median": 0, "sum": 0}) for w in ways]
        fmt = "{:.0f}" if "count" in name else "{:.2f}"
        lines.append(
            f"| {name} | "
            + " | ".join(f"{fmt.format(c['median'])} | {fmt.format(c['sum'])}" for c in cells)
            + " |"
        )
    return "\n".join(lines)
