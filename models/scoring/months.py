"""The months view: one row per period, from its raw files to its monitoring verdict (``make months``).

Like Dagster's partition status page, built from what the stages already leave behind, with no
bookkeeping of its own: ``raw/_manifest.json`` and the raw objects' listing (files, bytes, when they
arrived on S3), ``processed/<period>/trips.quality.json`` (rows in, out, quarantined, of another
period), the registry's versions (the months each trained and was validated on, the gate's decision)
and ``reports/<period>/monitoring.json`` (the champion version that scored it, the verdict).
The orchestration adds each period's last flow run (``orchestration.flows.months``). No Prefect here.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from models.core import s3
from models.core.names import MODEL_NAME
from models.core.periods import parse_month_ranges
from models.core.settings import Settings
from models.data.label_shift import REPORT_NAME
from models.data.raw_manifest import read_manifest

log = logging.getLogger(__name__)

QUALITY_COLUMNS = ("rows_in", "rows_out", "quarantined", "other_period")
COLUMNS = (
    "period",
    "raw_files",
    "raw_bytes",
    "arrived",
    *QUALITY_COLUMNS,
    "trained_in",
    "validated_in",
    "gate",
    "scored_by",
    "verdict",
)
SHOWN_VERSIONS = 3  # versions listed per cell; older ones are counted


def read_object_json(bucket: str, key: str, client: Any) -> dict[str, Any]:
    """One JSON object of the bucket."""
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def period_of(key: str, prefix: str, name: str) -> str | None:
    """``<period>`` of ``<prefix>/<period>/<name>``, or None for any other key."""
    rest = key[len(prefix) + 1 :] if key.startswith(prefix + "/") else ""
    period, _, file = rest.partition("/")
    return period if file == name and period else None


def read_period_files(settings: Settings, prefix: str, name: str) -> dict[str, dict[str, Any]]:
    """``{period: document}`` of every ``<prefix>/<period>/<name>`` JSON in the bucket (one listing)."""
    client = s3.s3_client(settings)
    uri = settings.s3_uri(prefix) + "/"
    found = {}
    for entry in s3.list_objects(uri, settings, client):
        period = period_of(entry["Key"], prefix, name)
        if period:
            with s3.s3_errors(uri + entry["Key"]):
                found[period] = read_object_json(settings.bucket, entry["Key"], client)
    return found


def raw_columns(settings: Settings) -> dict[str, dict[str, Any]]:
    """Per month: the raw files holding it, their bytes, and when the latest of them arrived on S3."""
    manifest = read_manifest(settings)
    listed = {e["Key"]: e for e in s3.list_objects(settings.s3_uri(settings.raw_prefix) + "/", settings)}
    rows: dict[str, dict[str, Any]] = {}
    for key, entry in manifest["files"].items():
        arrived = listed[key]["LastModified"].strftime("%Y-%m-%d %H:%M") if key in listed else None
        for month in entry.get("months") or []:
            row = rows.setdefault(month, {"raw_files": 0, "raw_bytes": 0, "arrived": None})
            row["raw_files"] += 1
            row["raw_bytes"] += int(entry.get("size") or 0)
            row["arrived"] = max(filter(None, (row["arrived"], arrived)), default=None)
    return rows


def list_versions(numbers: list[int]) -> str:
    """``v5, v4, v3 (+2)``: the newest versions first."""
    newest = sorted(numbers, reverse=True)
    shown = ", ".join(f"v{n}" for n in newest[:SHOWN_VERSIONS])
    return shown + (f" (+{len(newest) - SHOWN_VERSIONS})" if len(newest) > SHOWN_VERSIONS else "")


def registry_columns(versions: list[Any]) -> dict[str, dict[str, Any]]:
    """Per month: the versions trained on it, validated on it, and the gate's decision on the newest
    version validated on it (each version's tags ``data.train_months``, ``data.valid_month``,
    ``gate.decision``: ``models.registry.versions``)."""
    trained: dict[str, list[int]] = {}
    validated: dict[str, list[tuple[int, str]]] = {}
    for version in versions:
        number, tags = int(version.version), version.tags or {}
        for month in parse_month_ranges(tags.get("data.train_months", "")):
            trained.setdefault(month, []).append(number)
        if tags.get("data.valid_month"):
            validated.setdefault(tags["data.valid_month"], []).append((number, tags.get("gate.decision", "")))
    rows: dict[str, dict[str, Any]] = {}
    for month, numbers in trained.items():
        rows.setdefault(month, {})["trained_in"] = list_versions(numbers)
    for month, found in validated.items():
        number, decision = max(found)
        row = rows.setdefault(month, {})
        row["validated_in"] = list_versions([n for n, _ in found])
        row["gate"] = f"v{number} {decision or 'undecided'}"
    return rows


def read_versions(settings: Settings, name: str) -> list[Any]:
    """Every registered version of ``name`` with its tags (none when the model is not registered yet)."""
    from models.registry.mlflow_client import connect_tracking

    client = connect_tracking(settings.mlflow_tracking_uri, settings)
    return list(client.search_model_versions(f"name = '{name}'"))


def build_month_rows(settings: Settings, versions: list[Any] | None = None) -> list[dict[str, Any]]:
    """One row per period (month, or year when a whole year was processed), oldest first; ``COLUMNS``
    each, None where a stage has not reached the period. ``versions``: the registry's, else read."""
    from models.scoring.monitor import SUMMARY_FILE  # pandas and MLflow: only when building the view

    if versions is None:
        versions = read_versions(settings, settings.model_name or MODEL_NAME)
    quality = read_period_files(settings, settings.processed_prefix, REPORT_NAME)
    monitoring = read_period_files(settings, settings.reports_prefix, SUMMARY_FILE)
    raw, registry = raw_columns(settings), registry_columns(versions)
    rows = []
    for period in sorted(set(raw) | set(quality) | set(monitoring) | set(registry)):
        report, summary = quality.get(period, {}), monitoring.get(period, {})
        row = dict.fromkeys(COLUMNS)
        row.update(period=period, **raw.get(period, {}), **registry.get(period, {}))
        row.update({column: report.get(column) for column in QUALITY_COLUMNS if report})
        if summary:
            row.update(scored_by=f"v{summary.get('model_version')}", verdict=summary.get("verdict"))
        rows.append(row)
    log.info("months view: %s period(s)", len(rows))
    return rows
