"""The months view's rows (models.scoring.months) and the label-shift finder (models.data.label_shift),
against the session's S3 server and a SQLite MLflow registry with a champion trained on June-August 2025.

Each test uses prefixes of its own in the session's bucket.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from mlflow import MlflowClient

from models.core.contracts import PreprocessSummary
from models.core.settings import Settings
from models.data.label_shift import find_label_shifts
from models.data.raw_manifest import write_manifest
from models.scoring.months import COLUMNS, build_month_rows
from stack.embedded import StackEnv
from tests.models.training.trips import train_champion

pytestmark = pytest.mark.integration

NAME = "to-bikes-months-test"


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory):
    return train_champion(tmp_path_factory, NAME)


@pytest.fixture
def settings(s3_env: StackEnv) -> Settings:
    """The session's S3, with raw, processed and reports prefixes of this test's own."""
    tag = uuid.uuid4().hex[:8]
    return s3_env.settings().model_copy(
        update={
            "raw_prefix": f"months-{tag}/raw",
            "processed_prefix": f"months-{tag}/processed",
            "reports_prefix": f"months-{tag}/reports",
            "model_name": NAME,
        }
    )


def put_json(settings: Settings, prefix: str, period: str, name: str, document: dict[str, Any]) -> None:
    client = s3_client(settings)
    client.put_object(Bucket=settings.bucket, Key=f"{prefix}/{period}/{name}", Body=json.dumps(document))


def s3_client(settings: Settings) -> Any:
    from models.core import s3

    return s3.s3_client(settings)


def quality(period: str, shares: dict[str, float | None], rows: int = 100) -> dict[str, Any]:
    """A quality report's JSON (the summary's fields this code reads)."""
    return {
        "period": period,
        "rows_in": rows,
        "rows_out": rows - 7,
        "quarantined": 5,
        "other_period": 2,
        "label_share_by_month": shares,
    }


def summary(period: str, shares: dict[str, float | None]) -> PreprocessSummary:
    """A preprocessing summary holding ``shares`` per month."""
    return PreprocessSummary(
        rows_in=0,
        rows_out=0,
        quarantined=0,
        by_reason={},
        by_era={},
        by_file={},
        kept_with_nulls={},
        label_share={},
        label_share_by_month=shares,
        warnings=[],
        min_duration_s=60,
        input="s3://b/raw/",
        input_digest="",
        period=period,
        output="s3://b/processed/x/trips.parquet",
        quarantine="",
        report="s3://b/processed/x/trips.quality.json",
        report_md="",
    )


def test_the_rows_join_raw_files_quality_registry_and_monitoring(settings: Settings, champion) -> None:
    client = s3_client(settings)
    for name, body in (("a 2025-07.csv", b"x" * 30), ("b 2025-07.csv", b"y" * 12)):
        client.put_object(Bucket=settings.bucket, Key=f"{settings.raw_prefix}/2025/{name}", Body=body)
    manifest = {
        "licence": "",
        "resources": {},
        "files": {
            f"{settings.raw_prefix}/2025/a 2025-07.csv": {"size": 30, "months": ["2025-06", "2025-07"]},
            f"{settings.raw_prefix}/2025/b 2025-07.csv": {"size": 12, "months": ["2025-07"]},
        },
    }
    write_manifest(manifest, settings)
    put_json(settings, settings.processed_prefix, "2025-07", "trips.quality.json", quality("2025-07", {}))
    put_json(settings, settings.processed_prefix, "2025-07", "trips.quarantine.json", {"ignored": True})
    monitored = {"period": "2025-08", "verdict": "ok", "model_version": champion.version}
    put_json(settings, settings.reports_prefix, "2025-08", "monitoring.json", monitored)
    versions = MlflowClient(champion.uri).search_model_versions(f"name = '{NAME}'")

    rows = {row["period"]: row for row in build_month_rows(settings, versions)}
    print(json.dumps(rows, indent=1))

    assert all(tuple(row) == COLUMNS for row in rows.values())
    july, june, august = rows["2025-07"], rows["2025-06"], rows["2025-08"]
    assert (july["raw_files"], july["raw_bytes"], june["raw_files"], june["raw_bytes"]) == (2, 42, 1, 30)
    assert july["arrived"] and july["arrived"][:2] == "20"
    assert (july["rows_in"], july["rows_out"], july["quarantined"], july["other_period"]) == (100, 93, 5, 2)
    version = f"v{champion.version}"
    assert july["trained_in"] == version and june["trained_in"] == version, rows
    assert august["validated_in"] == version and august["gate"] == f"{version} promoted", august
    assert (august["scored_by"], august["verdict"]) == (version, "ok")
    assert august["rows_in"] is None and june["verdict"] is None


def test_a_month_run_is_compared_with_the_previous_months_report(settings: Settings) -> None:
    put_json(
        settings,
        settings.processed_prefix,
        "2023-01",
        "trips.quality.json",
        quality("2023-01", {"2023-01": 0.7}),
    )

    (shift,) = find_label_shifts(summary("2023-02", {"2023-02": 0.06}), settings)

    assert shift == {
        "period": "2023-02",
        "member_share": 0.06,
        "previous_period": "2023-01",
        "previous_share": 0.7,
    }
    assert find_label_shifts(summary("2023-02", {"2023-02": 0.5}), settings) == []
    assert find_label_shifts(summary("2023-03", {"2023-03": 0.06}), settings) == []  # no February report


def test_a_year_run_compares_its_months_and_reads_a_previous_month_from_its_years_report(
    settings: Settings,
) -> None:
    year = summary("2023", {"2023-01": 0.7, "2023-02": 0.06, "2023-03": 0.1, "2023-05": 0.9})
    assert [s["period"] for s in find_label_shifts(year, settings)] == ["2023-02"]  # 2023-05: no April
    put_json(
        settings, settings.processed_prefix, "2023", "trips.quality.json", quality("2023", {"2023-04": 0.2})
    )
    (shift,) = find_label_shifts(summary("2023-05", {"2023-05": 0.9}), settings)
    assert (shift["previous_period"], shift["previous_share"]) == ("2023-04", 0.2)
