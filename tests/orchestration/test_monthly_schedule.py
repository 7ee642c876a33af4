"""prefect.yaml schedules the ingest; the newest month with trips on S3 stays as an unscheduled catch-up."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT
from orchestration.flows.monthly import find_newest_month


def read_deployments() -> dict[str, dict]:
    """The process pool's deployments by their flow function (the deployment names repeat across flows)."""
    document = yaml.safe_load(Path(PROJECT_ROOT, "prefect.yaml").read_text())
    pool = [d for d in document["deployments"] if d["work_pool"]["name"] == "to-bikes"]
    return {d["entrypoint"].rpartition(":")[2]: d for d in pool}


@pytest.mark.unit
def test_the_newest_month_is_the_latest_of_the_year_with_trips() -> None:
    shares = {"2025-01": 0.7, "2025-03": 0.6, "2025-02": None, "2024-12": 0.7}
    assert find_newest_month(shares, 2025) == "2025-03"
    assert find_newest_month({"2026-01": 0.5, "2025-11": 0.6}, 2025) == "2025-11"
    with pytest.raises(UserError, match="No month of 2025 has kept trips under raw/2025/"):
        find_newest_month({"2024-12": 0.7}, 2025)


@pytest.mark.unit
def test_prefect_yaml_schedules_the_ingest_daily_and_keeps_the_newest_month_unscheduled() -> None:
    deployments = read_deployments()
    ingest = deployments["ingest_flow"]
    assert ingest["name"] == "scheduled-daily"
    assert [(s["active"], s["cron"]) for s in ingest["schedules"]] == [(True, "0 6 * * *")]
    for flow in ("newest_month_flow", "pipeline_flow", "preprocess_flow", "score_flow", "backfill_flow"):
        assert deployments[flow]["name"] == "on-demand"
        assert "schedules" not in deployments[flow]  # not even a paused one: the UI would draw it
