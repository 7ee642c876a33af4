"""A catch-up started by hand: the pipeline for the newest month whose trips are on S3.

A deployment's parameters are fixed when it is deployed, so "the newest month" cannot be written in
prefect.yaml; this flow finds it at run time. It preprocesses the latest ``raw/<year>/`` (cached on the
raw objects' checksums: a day without new files costs a cache lookup), takes the newest month that
has kept trips, and runs ``to-bikes-pipeline`` for it as a subflow (cached again when nothing changed:
no second MLflow run, no second version). Deployed as ``to-bikes-newest-month/on-demand``, with no
schedule: the ingest deployment's month events start the pipeline for each changed month.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from models.core.errors import UserError
from models.core.names import DEFAULT_MARGIN, DEFAULT_MAX_EVALS, DEFAULT_MIN_DURATION_S, DEFAULT_SEED
from models.core.periods import MONTH_PATTERN
from orchestration.flows.api_loss import ending_on_api_loss
from orchestration.flows.pipeline import (
    find_latest_year,
    pipeline_flow,
    preprocess_period_steps,
    start_flow_run,
)


def find_newest_month(rows_by_month: dict[str, object], year: int) -> str:
    """The latest ``YYYY-MM`` of ``year`` among the months the processed year holds trips of."""
    months = sorted(m for m in rows_by_month if MONTH_PATTERN.match(m) and m.startswith(f"{year:04d}-"))
    if not months:
        raise UserError(f"No month of {year} has kept trips under raw/{year}/; run `make sync-data` first.")
    return months[-1]


@flow(name="to-bikes-newest-month")
def newest_month_flow(
    max_evals: int = DEFAULT_MAX_EVALS, seed: int = DEFAULT_SEED, margin: float = DEFAULT_MARGIN
) -> dict:
    """Find the newest month with trips on S3 and run the pipeline for it."""
    settings = start_flow_run()
    with ending_on_api_loss(settings):
        year = find_latest_year(settings)
        processed = preprocess_period_steps(settings, year, None, DEFAULT_MIN_DURATION_S)
        month = find_newest_month(processed.get("label_share_by_month") or {}, year)
    get_run_logger().info("newest month with trips on S3: %s", month)
    return pipeline_flow(year=year, month=int(month[5:7]), max_evals=max_evals, seed=seed, margin=margin)
