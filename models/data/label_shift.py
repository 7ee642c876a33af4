"""Months whose member share moved more than ``SHARE_JUMP`` from the previous month's (the City's 2023 files).

A year run sees its months side by side (``label_share_by_month`` of the preprocessing summary); a month
run sees one month, so the previous month's share comes from that month's quality report on S3
(``processed/<month>/trips.quality.json``, else the year's). The orchestration emits one
``to-bikes.data.quality-warning`` event per shift found; nothing here talks to Prefect.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from models.core import s3
from models.core.contracts import PreprocessSummary
from models.core.periods import format_month, is_month, month_key
from models.core.settings import Settings
from models.data.quality import SHARE_JUMP

log = logging.getLogger(__name__)

REPORT_NAME = "trips.quality.json"


def read_json(uri: str, settings: Settings) -> dict[str, Any] | None:
    """A JSON object on S3, or None when there is none."""
    if not s3.object_exists(uri, settings):
        return None
    bucket, key = s3.split_s3_uri(uri)
    with s3.s3_errors(uri):
        return json.loads(s3.s3_client(settings).get_object(Bucket=bucket, Key=key)["Body"].read())


def quality_report_uri(settings: Settings, period: str) -> str:
    """``s3://<bucket>/<processed>/<period>/trips.quality.json``."""
    return settings.s3_uri(settings.processed_prefix, period, REPORT_NAME)


def read_month_share(month: str, settings: Settings) -> float | None:
    """The member share of ``month`` from its own quality report, else from its year's; None if unknown."""
    for period in (month, month[:4]):
        report = read_json(quality_report_uri(settings, period), settings)
        share = (report or {}).get("label_share_by_month", {}).get(month)
        if share is not None:
            return float(share)
    return None


def find_label_shifts(
    summary: PreprocessSummary, settings: Settings, jump: float = SHARE_JUMP
) -> list[dict[str, Any]]:
    """One record per month of the run whose member share moved more than ``jump`` from the month before.

    Each record: ``period``, ``member_share``, ``previous_period``, ``previous_share`` (shares 0..1).
    """
    shares = {m: s for m, s in summary.label_share_by_month.items() if s is not None}
    if summary.period and is_month(summary.period) and summary.period in shares:
        previous = format_month(month_key(summary.period) - 1)
        known = read_month_share(previous, settings)
        if known is not None:
            shares[previous] = known
    shifts = []
    for month in sorted(shares):
        before = format_month(month_key(month) - 1)
        if before in shares and abs(shares[month] - shares[before]) > jump:
            shifts.append(
                {
                    "period": month,
                    "member_share": shares[month],
                    "previous_period": before,
                    "previous_share": shares[before],
                }
            )
    log.info("label shifts of more than %.0f points: %s", jump * 100, len(shifts))
    return shifts
