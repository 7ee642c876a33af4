"""Running one task in a child process and reading its time and peak memory, and taking medians.

Each task runs in a fresh interpreter (``bench.child``), so one measurement cannot warm the next
one's memory, and ``os.wait4`` gives that one child's peak resident set size.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class ChildFailedError(RuntimeError):
    """A measured task exited with an error; the message names the task and its log."""


def run_child(
    task: str, args: dict[str, Any], log_path: Path, cwd: Path = ROOT, first_on_path: Path | None = None
) -> dict[str, Any]:
    """Run ``bench.child TASK`` and return its JSON result plus ``peak_rss_bytes`` and ``process_seconds``.

    ``first_on_path`` goes before the repository on PYTHONPATH (the training reference's old ``models``).
    """
    paths = [str(first_on_path)] if first_on_path else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(ROOT)])}
    command = [sys.executable, "-m", "bench.child", task, json.dumps(args)]
    started = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=env, cwd=cwd, text=True)
        output = proc.stdout.read() if proc.stdout else ""
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise ChildFailedError(f"bench task {task} exited with {proc.returncode}; see {log_path}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_bytes"] = usage.ru_maxrss * 1024  # Linux reports kilobytes
    result["process_seconds"] = time.perf_counter() - started
    return result


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    """The median of one numeric field over repeated runs."""
    return float(statistics.median(run[key] for run in runs))
