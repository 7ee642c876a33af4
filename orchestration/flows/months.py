"""The months view with each period's last flow run, as the Prefect table artifact ``months``.

``models.scoring.months`` builds the rows from S3 and MLflow; this adds the state and link of the newest
flow run of the project's deployments (tag ``to-bikes``) per period, read in one API call, and publishes
the table at the end of the pipeline, score and ingest flows (the key is fixed, so the UI keeps its
history) and for ``python -m orchestration months``.
"""

from __future__ import annotations

import logging
from typing import Any

from models.core.names import MONTHS_ARTIFACT
from models.core.periods import format_period
from models.core.settings import Settings

log = logging.getLogger(__name__)

RUN_TAG = "to-bikes"  # the tag of every deployment in prefect.yaml (orchestration.deploy.automations)
RUNS_READ = 200  # the newest runs looked at: enough for every period a person looks at
RUN_COLUMNS = ("last_run", "state", "link")


def run_period(parameters: dict[str, Any]) -> str | None:
    """The period a run's parameters name (None: the latest year, or no period at all)."""
    year, month = parameters.get("year"), parameters.get("month")
    return format_period(year, month) if year is not None else None


def read_last_runs(client: Any, ui_url: str) -> dict[str, dict[str, Any]]:
    """Per period, the newest tagged flow run: its flow and name, state and UI link (one API call)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[RUN_TAG])),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=RUNS_READ,
    )
    last: dict[str, dict[str, Any]] = {}
    for run in runs:
        period = run_period(run.parameters or {})
        if period and period not in last:
            last[period] = {
                "last_run": run.name,
                "state": run.state_name,
                "link": f"{ui_url}/runs/flow-run/{run.id}",
            }
    return last


def build_months_table(settings: Settings, client: Any = None) -> list[dict[str, Any]]:
    """The rows of ``models.scoring.months`` with the last flow run's columns (and a row per period
    that only a run names yet)."""
    from prefect.client.orchestration import get_client

    from models.scoring.months import COLUMNS, build_month_rows

    rows = {row["period"]: row for row in build_month_rows(settings)}
    if client is None:
        with get_client(sync_client=True) as own:
            runs = read_last_runs(own, settings.prefect_ui_url)
    else:
        runs = read_last_runs(client, settings.prefect_ui_url)
    for period, columns in runs.items():
        rows.setdefault(period, {**dict.fromkeys(COLUMNS), "period": period}).update(columns)
    empty = dict.fromkeys(RUN_COLUMNS)
    return [{**empty, **rows[period]} for period in sorted(rows)]


def publish_months(settings: Settings) -> list[dict[str, Any]]:
    """The months table as the ``months`` artifact (inside a flow run, or standalone)."""
    from prefect.artifacts import create_table_artifact

    table = build_months_table(settings)
    create_table_artifact(
        key=MONTHS_ARTIFACT,
        table=table,
        description="One row per period: raw files, rows, models, gate, scoring, verdict, last flow run.",
    )
    log.info("months artifact: %s period(s)", len(table))
    return table


def report_months(settings: Settings) -> None:
    """Publish the months artifact at the end of a flow run; a failure is a warning, not the run's."""
    from prefect import get_run_logger, task
    from prefect.cache_policies import NO_CACHE

    state = task(publish_months, name="publish-months", cache_policy=NO_CACHE)(settings, return_state=True)
    if not state.is_completed():
        get_run_logger().warning("months artifact not updated: %s", state.message)
