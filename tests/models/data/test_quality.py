"""The data-quality report: counts add up, label share per month, loud warnings, Markdown."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from models.core.contracts import PreprocessSummary
from models.data.quality import QualityTracker, build_report, build_summary, render_markdown, share_warnings
from tests.models.data.rows import HEADER_2025, csv_bytes, row_2025, run_on

pytestmark = pytest.mark.unit


def month_rows(month: int, members: int, casuals: int, first: int) -> list[str]:
    start, end = f"2025-{month:02d}-03 08:00:00", f"2025-{month:02d}-03 08:10:00"
    return [
        row_2025(first + i, start=start, end=end, user="Member" if i < members else "Casual")
        for i in range(members + casuals)
    ]


def test_a_month_whose_member_share_jumps_more_than_25_points_gets_a_loud_warning(tmp_path):
    rows = month_rows(4, 80, 20, 1000) + month_rows(5, 6, 94, 2000) + month_rows(6, 78, 22, 3000)
    result = run_on(tmp_path, {"2025.csv": csv_bytes(HEADER_2025, rows)})
    warnings = result.summary.warnings
    assert len(warnings) == 2 and "2025-05" in warnings[0] and "2025-06" in warnings[1]
    assert result.summary.label_share_by_month == {"2025-04": 0.8, "2025-05": 0.06, "2025-06": 0.78}
    markdown = (tmp_path / "out" / "trips.quality.md").read_text()
    assert markdown.count("**WARNING**") == 2
    assert markdown.index("WARNING") < markdown.index("## Quarantine reasons")


def test_a_small_shift_or_a_tiny_month_gives_no_warning():
    shares = {
        "2025-01": {"member": 80, "casual": 20, "member_share": 0.8},
        "2025-02": {"member": 60, "casual": 40, "member_share": 0.6},
        "2025-03": {"member": 0, "casual": 1, "member_share": 0.0},  # one stray trip
    }
    assert share_warnings(shares) == []


def test_report_json_and_markdown_hold_files_eras_reasons_and_months(tmp_path):
    rows = [*month_rows(6, 3, 1, 100), row_2025(9, duration="0")]
    run_on(tmp_path, {"2025/2025-06.csv": csv_bytes(HEADER_2025, rows, bom=True)})
    report = json.loads((tmp_path / "out" / "trips.quality.json").read_text())
    assert report["files"]["2025/2025-06.csv"]["rows_in"] == 5
    assert report["by_era"] == {"2025": 5} and report["by_reason"] == {"nonpositive_duration": 1}
    assert report["label_counts_by_month"]["2025-06"] == {"member": 3, "casual": 1, "member_share": 0.75}
    assert report["input_digest"].startswith("sha256:")
    markdown = (tmp_path / "out" / "trips.quality.md").read_text()
    assert "| nonpositive_duration | 1 |" in markdown and "2025/2025-06.csv" in markdown


def test_summary_counts_add_up_from_the_tracker():
    tracker = QualityTracker()
    tracker.month_labels["2025-01"] = Counter(member=3, casual=1)
    paths = {"output": "o.parquet", "quarantine": "q.parquet", "report": "r.json", "report_md": "r.md"}
    summary = build_summary(
        tracker, min_duration_s=60, input="in/", input_digest="sha256:0", period=None, **paths
    )
    assert summary.rows_in == summary.rows_out + summary.quarantined + summary.other_period
    assert summary.label_share == {"member": 0.75, "casual": 0.25}
    assert "# Data-quality report" in render_markdown(build_report(tracker, summary))


def test_a_summary_cached_before_other_period_existed_still_loads():
    old = {
        "rows_in": 3,
        "rows_out": 2,
        "quarantined": 1,
        "by_reason": {"outside_period": 1},
        "by_era": {"2025": 3},
        "by_file": {"a.csv": 3},
        "kept_with_nulls": {},
        "label_share": {"member": 1.0, "casual": 0.0},
        "label_share_by_month": {"2025-06": 1.0},
        "warnings": [],
        "min_duration_s": 60,
        "input": "in/",
        "input_digest": "sha256:0",
        "period": "2025-06",
        "output": "o.parquet",
        "quarantine": "q.parquet",
        "report": "r.json",
        "report_md": "r.md",
    }
    summary = PreprocessSummary.from_dict(old)
    assert summary.other_period == 0
    assert summary.rows_in == summary.rows_out + summary.quarantined + summary.other_period
    assert PreprocessSummary.from_dict(summary.to_dict()) == summary
