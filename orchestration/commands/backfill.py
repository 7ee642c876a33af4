"""``make backfill``: one run of the ``backfill/on-demand`` deployment for a range of periods, then its table.

The run preprocesses every period in one flow run on Dask (``orchestration.flows.backfill``) and leaves a
table artifact, one row per period; this prints that table after the run reached its final state:
period, rows in/out/quarantined, seconds of the period's task run (a cache hit only reads its stored
result) and whether it was cached.
"""

from __future__ import annotations

import json
import time
from typing import Any

from models.core.errors import UserError
from models.core.names import BACKFILL_DEPLOYMENT
from models.core.periods import YEAR_PATTERN, month_range
from orchestration.commands import runs

BACKFILL = BACKFILL_DEPLOYMENT
TABLE_KEY = (
    "backfill"  # orchestration.flows.backfill.TABLE_KEY (not imported: that module needs prefect-dask)
)


def period_range(first: str, last: str) -> list[str]:
    """Years ``FROM..TO`` when both are ``YYYY``, else every month (``YYYY-MM``) from ``FROM`` to ``TO``."""
    if YEAR_PATTERN.match(first or "") and YEAR_PATTERN.match(last or ""):
        if int(first) > int(last):
            raise UserError(f"FROM={first} is after TO={last}.")
        return [str(year) for year in range(int(first), int(last) + 1)]
    return month_range(first, last)


def read_table(client: Any, flow_run_id: Any) -> list[dict[str, Any]]:
    """The rows of the run's ``backfill`` table artifact (empty when the run failed before writing it)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=[TABLE_KEY])
        )
    )
    if not artifacts:
        return []
    data = artifacts[0].data
    return json.loads(data) if isinstance(data, str) else list(data)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The periods as a plain-text table (rich, no colour, never wrapped): a header line, one line each."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style=None)
    table.add_column("period", no_wrap=True)
    for column in ("rows in", "rows out", "quarantined", "other period", "seconds"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("cached", no_wrap=True)
    for row in rows:
        counts = (row["rows_in"], row["rows_out"], row["quarantined"], row.get("other_period", 0))
        cached = "yes" if row["cached"] else "no"
        table.add_row(str(row["period"]), *map(str, counts), f"{float(row['seconds']):.1f}", cached)
    return render_plain(table)


def render_plain(renderable: Any) -> str:
    """Text of a rich renderable without colour, markup or wrapping (for logs, pipes and tests)."""
    import io

    from rich.console import Console

    console = Console(
        file=io.StringIO(), width=1000, color_system=None, markup=False, highlight=False, emoji=False
    )
    with console.capture() as capture:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in capture.get().splitlines())


def run_backfill(
    periods: list[str], params: dict[str, Any], timeout_s: float, name: str = BACKFILL
) -> tuple[bool, str]:
    """One run of the backfill deployment for ``periods``; ``(completed, report with the table)``."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    caller = runs.ApiCaller(str(PREFECT_API_URL.value()), say=runs.print_now)
    run = runs.start_run(caller, name, {**params, "periods": periods})
    runs.print_now(f"{name} {periods[0]}..{periods[-1]}: {run.url}")
    state = runs.wait_final(caller, run.flow_run.id, run.pool, timeout_s)
    with get_client(sync_client=True) as client:
        rows = caller.call(read_table, client, run.flow_run.id)
    seconds = time.monotonic() - run.started
    label = state.name if state is not None else "unknown"
    if state is None or not state.is_final():
        return False, f"{run.flow_run.name}: still {label} after {seconds:.0f} s (timeout)"
    report = f"{run.flow_run.name}: {label} in {seconds:.1f} s, {len(rows)} of {len(periods)} period(s)"
    return state.is_completed(), (format_table(rows) + "\n" if rows else "") + report
