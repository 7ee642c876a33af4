"""The stage contracts' JSON forms: the keys Prefect has cached stay the same, and a read-back is checked."""

from __future__ import annotations

import json

import pydantic
import pytest

from models.core.contracts import PreprocessSummary, TrainResult

pytestmark = pytest.mark.unit

# What flows cached before the contracts were pydantic dataclasses: a rename here strands every cache.
TRAIN_KEYS = [
    "run_id", "metrics", "baseline_metrics", "champion_metrics", "run_url", "valid_month", "champion_version",
    "seconds", "inputs", "train_months", "compared_on", "comparison", "compared_metrics",
]  # fmt: skip
SUMMARY_KEYS = [
    "rows_in", "rows_out", "quarantined", "by_reason", "by_era", "by_file", "kept_with_nulls", "label_share",
    "label_share_by_month", "warnings", "min_duration_s", "input", "input_digest", "period", "output",
    "quarantine", "report", "report_md", "other_period",
]  # fmt: skip


SUMMARY_VALUES = {
    **dict.fromkeys(("rows_in", "rows_out", "quarantined", "min_duration_s", "other_period"), 0),
    **{key: {} for key in ("by_reason", "by_era", "by_file", "kept_with_nulls", "label_share")},
    **dict.fromkeys(("input", "input_digest", "output", "quarantine", "report", "report_md"), ""),
    "label_share_by_month": {"2025-01": None},
    "warnings": [],
}


def train_result() -> TrainResult:
    return TrainResult("r", {"roc_auc": 0.9}, {"roc_auc": 0.5}, None, None, valid_month="2025-08")


def test_the_json_forms_keep_the_cached_keys_in_order() -> None:
    assert list(train_result().to_dict()) == TRAIN_KEYS
    summary = PreprocessSummary.from_dict(SUMMARY_VALUES | {"period": None})
    assert list(summary.to_dict()) == SUMMARY_KEYS


def test_a_cached_form_round_trips_ignores_extra_keys_and_rejects_a_wrong_type() -> None:
    result = train_result()
    cached = json.loads(json.dumps({**result.to_dict(), "cached": True}))
    assert TrainResult.from_dict(cached) == result
    with pytest.raises(pydantic.ValidationError, match="metrics"):
        TrainResult.from_dict({**result.to_dict(), "metrics": "not a mapping"})
