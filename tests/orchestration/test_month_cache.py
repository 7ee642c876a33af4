"""Month-only work: a month run reads and is cached on only the raw files holding that month.

In this process against the local stack: a fake CKAN portal publishes 2025 January-November, the ingest
writes it to S3 with its manifest, and one flow run preprocesses every month. Then December arrives
(the year republished with one more file): January-November stay cached, December is computed. Then the
March file changes: March alone is computed again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.core.names import DEFAULT_MIN_DURATION_S
from models.core.settings import Settings
from stack.embedded import StackEnv
from tests.models.data.portal import Portal, serving, zip_bytes
from tests.models.data.rows import HEADER_2025, csv_bytes, row_2025

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "to-bikes-month-cache"
COMPUTED, CACHED = "Completed", "Cached"


def month_csv(month: int, trips: int = 4) -> bytes:
    start, end = f"2025-{month:02d}-03 08:00:00", f"2025-{month:02d}-03 08:20:00"
    return csv_bytes(HEADER_2025, [row_2025(month * 1000 + i, start=start, end=end) for i in range(trips)])


def year_zip(months: dict[int, bytes]) -> bytes:
    return zip_bytes({f"Bike share ridership 2025-{m:02d}.csv": data for m, data in months.items()})


@pytest.fixture(scope="module")
def month_stack(local_stack: StackEnv) -> Iterator[Settings]:
    """Blocks pointing at a bucket of this module's own (created here); yields its settings."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from orchestration.deploy.blocks import save_all

    client = local_stack.s3_client()
    if BUCKET not in {item["Name"] for item in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    settings = local_stack.settings().model_copy(update={"bucket": BUCKET})
    with temporary_settings(updates={PREFECT_API_URL: local_stack["PREFECT_API_URL"]}):
        save_all(settings)
        yield settings


def publish_and_ingest(portal: Portal, settings: Settings, months: dict[int, bytes], when: str) -> list[str]:
    """The portal republishes 2025; the ingest brings S3 up to date; returns the changed months."""
    from models.data.download import Downloader
    from models.data.ingest import ingest_portal

    portal.publish(2025, year_zip(months), when)
    report = ingest_portal(settings, api_url=portal.api, downloader=Downloader(backoff_s=0, progress=False))
    return report.changed_months


def month_states(months: list[int]) -> dict[str, str]:
    """One in-process flow run preprocessing each month of 2025; period -> Cached or Completed."""
    from prefect import flow

    from orchestration.flows.pipeline import preprocess_period_steps, start_flow_run

    @flow(name="month-cache-test")
    def preprocess_months(months: list[int]) -> dict[str, str]:
        settings = start_flow_run()
        found = {}
        for month in months:
            summary = preprocess_period_steps(settings, 2025, month, DEFAULT_MIN_DURATION_S)
            found[summary["period"]] = CACHED if summary["cached"] else COMPUTED
        return found

    return preprocess_months(months)


def test_december_leaves_january_to_november_cached_and_a_changed_march_recomputes_march_only(
    month_stack: Settings,
) -> None:
    files = {month: month_csv(month) for month in range(1, 12)}
    with serving(Portal(resources=[])) as portal:
        assert publish_and_ingest(portal, month_stack, files, "2026-01-15T10:00:00") == [
            f"2025-{m:02d}" for m in range(1, 12)
        ]
        first = month_states(list(range(1, 12)))
        print("first run:", first)
        assert set(first.values()) == {COMPUTED}

        files[12] = month_csv(12)
        assert publish_and_ingest(portal, month_stack, files, "2026-02-01T09:00:00") == ["2025-12"]
        december = month_states(list(range(1, 13)))
        print("after December arrived:", december)
        assert december == {**{f"2025-{m:02d}": CACHED for m in range(1, 12)}, "2025-12": COMPUTED}

        files[3] = month_csv(3, trips=6)
        assert publish_and_ingest(portal, month_stack, files, "2026-03-01T09:00:00") == ["2025-03"]
        march = month_states(list(range(1, 13)))
        print("after the March file changed:", march)
        assert march == {**{f"2025-{m:02d}": CACHED for m in range(1, 13)}, "2025-03": COMPUTED}
