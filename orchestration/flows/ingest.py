"""The ``ingest`` flow: the City's portal -> ``raw/`` on S3, then one event per month that changed.

A thin flow over ``models.data.ingest.ingest_portal`` (CKAN ``package_show`` on every run; only new or
changed files downloaded and written, each atomically, with ``raw/_manifest.json``). Each month whose
trips were added or changed becomes a ``to-bikes.month.changed`` event naming it (resource
``to-bikes.period.YYYY-MM``, payload year and month): the automation ``to-bikes-pipeline-on-month``
(orchestration/deploy/loop_automations.py) runs the pipeline for it, scoring follows that run, and a
breach retrains. A file the City withdrew is kept, logged as a warning, listed in an artifact and
emitted as ``to-bikes.file.withdrawn``. Deployed as ``ingest/scheduled-daily`` on its own queue ``ingest``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from models.core.names import FILE_WITHDRAWN_EVENT, MONTH_CHANGED_EVENT
from models.core.settings import Settings
from orchestration.flows.api_loss import ending_on_api_loss
from orchestration.flows.months import report_months
from orchestration.flows.notices import emit_period_event, flow_run_related
from orchestration.flows.pipeline import IO_RETRIES, start_flow_run
from orchestration.flows.work_locks import hold_work_lock, name_work

INGEST_KEY = "ingest"


@task(name="ingest-portal", cache_policy=NO_CACHE, **IO_RETRIES)
def ingest_task(settings: Settings) -> dict[str, Any]:
    """``models.data.ingest.ingest_portal`` (idempotent: a retry moves only what is still missing).

    One ingest per manifest at a time: each reads ``raw/_manifest.json`` first and writes it back
    with its changes, so two at once would keep only the last write. The work lock
    (``orchestration.flows.work_locks``) makes the second wait, then find the first's files listed.
    S3 conditional writes would do it without Prefect, but s3rver honours no ``If-Match`` on PUT.
    """
    import models.data.ingest as ingest
    from models.data.raw_manifest import manifest_uri

    with hold_work_lock(name_work("ingest", settings.s3_endpoint_url, manifest_uri(settings))):
        return ingest.ingest_portal(settings).to_dict()


def emit_month_changed(month: str) -> Any:
    """The event the pipeline automation listens for; the month is its resource and payload."""
    return emit_period_event(MONTH_CHANGED_EVENT, month, {"year": int(month[:4]), "month": int(month[5:7])})


def report_withdrawn(keys: list[str], settings: Settings) -> None:
    """A warning, an artifact and an event per file the portal no longer holds (kept on S3)."""
    if not keys:
        return
    get_run_logger().warning("%s file(s) withdrawn by the City, kept on S3: %s", len(keys), ", ".join(keys))
    lines = [f"- `s3://{settings.bucket}/{key}`" for key in keys]
    create_markdown_artifact(
        key="ingest-withdrawn",
        markdown="Files the portal no longer publishes (kept, not deleted):\n\n" + "\n".join(lines),
        description=f"{len(keys)} withdrawn file(s)",
    )
    for key in keys:
        emit_event(
            event=FILE_WITHDRAWN_EVENT,
            resource={"prefect.resource.id": f"to-bikes.file.{key}", "prefect.resource.name": key},
            related=flow_run_related(),
            payload={"bucket": settings.bucket, "key": key},
        )


def publish_ingest(report: dict[str, Any]) -> None:
    """The run's summary as a markdown artifact (what moved, what changed)."""
    rows = [
        f"| {name} | {report[name] if not isinstance(report[name], list) else len(report[name])} |"
        for name in ("resources", "bytes_downloaded", "downloaded", "uploaded", "withdrawn", "unreadable")
    ]
    months = ", ".join(report["changed_months"]) or "none"
    markdown = "| what | count |\n|---|---|\n" + "\n".join(rows) + f"\n\nMonths changed: {months}\n"
    create_markdown_artifact(key=INGEST_KEY, markdown=markdown, description="ingest from the City's portal")


@flow(name="ingest")
def ingest_flow() -> dict[str, Any]:
    """Bring ``raw/`` up to date with the portal; one event per changed month and withdrawn file."""
    settings = start_flow_run()
    with ending_on_api_loss(settings):
        report = ingest_task(settings)
        for month in report["changed_months"]:
            emit_month_changed(month)
        report_withdrawn(report["withdrawn"], settings)
        if report["unreadable"]:
            get_run_logger().warning(
                "no month could be read from %s (written; its year's month runs quarantine it)",
                ", ".join(report["unreadable"]),
            )
        publish_ingest(report)
        report_months(settings)
    get_run_logger().info(
        "%s resource(s); bytes downloaded: %s; %s file(s) written; months changed: %s",
        report["resources"],
        report["bytes_downloaded"],
        len(report["uploaded"]),
        ", ".join(report["changed_months"]) or "none",
    )
    return report
