"""Orchestration overhead: a pipeline run through the deployment and worker vs the CLI (in progress)."""

from __future__ import annotations

import subprocess
from typing import Any

from bench.measure import ROOT

AGENT_PYTHON = ROOT / "agent" / ".venv" / "bin" / "python"


def prefect_version() -> str:
    """Prefect's version in agent/.venv (empty when that venv is missing)."""
    if not AGENT_PYTHON.exists():
        return ""
    found = subprocess.run(
        [str(AGENT_PYTHON), "-c", "import prefect; print(prefect.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip()


def measure_orchestration(ctx: Any) -> dict[str, Any]:
    """Not measured yet."""
    reason = "not measured: the orchestration measurement is not written yet"
    rows = [
        {"measure": m, "value": reason, "reference": "-", "ratio": None, "goal": g, "holds": None}
        for m, g in (
            ("pipeline run via deployment + worker vs CLI", "<= 1.5x"),
            ("trigger-to-running latency of the worker", "-"),
            ("no-change rerun through the cache vs cold run", "<= 10%"),
        )
    ]
    return {"rows": rows, "notes": []}
