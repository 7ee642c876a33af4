"""Which processed outputs a run for a period reads: the rule alone, then against the local S3 server."""

from __future__ import annotations

import uuid

import pytest

from models.core.errors import UserError
from models.training.inputs import list_input_uris, plan_training_periods, select_training_inputs

WHERE = "s3://bucket/processed/"


def months(first: str, last: str) -> set[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last`` inclusive."""
    import pandas as pd

    return {str(p) for p in pd.period_range(first, last, freq="M")}


@pytest.mark.unit
def test_a_year_reads_only_its_own_output():
    assert plan_training_periods("2025", {"2024", "2025", "2025-03"}, WHERE) == ["2025"]


@pytest.mark.unit
def test_a_month_reads_the_trailing_twelve_months_and_nothing_older():
    available = months("2023-11", "2025-05") | {"2024", "2025"}
    expected = sorted(months("2024-04", "2025-03"))
    assert plan_training_periods("2025-03", available, WHERE) == expected


@pytest.mark.unit
def test_a_gap_is_filled_by_the_previous_year_instead_of_its_months():
    available = {"2024", "2024-10", "2024-11", "2025-01", "2025-03", "2025"}
    assert plan_training_periods("2025-03", available, WHERE) == ["2024", "2025-01", "2025-03"]


@pytest.mark.unit
def test_december_with_only_last_year_trains_on_last_year():
    assert plan_training_periods("2025-12", {"2024", "2025-12"}, WHERE) == ["2024", "2025-12"]


@pytest.mark.unit
def test_a_month_alone_is_refused_naming_the_prefix_and_what_to_run():
    available = {"2024-03", "2025-03", "2025"}  # 2024-03 is outside the window, 2025 may hold March
    with pytest.raises(UserError, match="at least two months") as caught:
        plan_training_periods("2025-03", available, WHERE)
    message = str(caught.value)
    assert WHERE in message and "2025-02" in message and "2024" in message
    assert message.count(". ") == 0


@pytest.mark.unit
@pytest.mark.parametrize("period", ["2025-13", "25", "2025-3", "2025/03"])
def test_a_malformed_period_is_refused(period):
    with pytest.raises(UserError, match="YYYY-MM"):
        plan_training_periods(period, {"2025-03"}, WHERE)


@pytest.mark.unit
def test_a_missing_output_for_the_period_itself_is_refused():
    with pytest.raises(UserError, match="No processed output for 2025-04"):
        plan_training_periods("2025-04", months("2024-01", "2025-03"), WHERE)
    with pytest.raises(UserError, match="No processed output for 2026"):
        plan_training_periods("2026", {"2025"}, WHERE)


@pytest.mark.unit
def test_input_uris_accept_one_string_or_several_but_not_none_or_repeats(tmp_path):
    assert list_input_uris("a.parquet") == ["a.parquet"]
    assert list_input_uris(tmp_path / "b.parquet") == [str(tmp_path / "b.parquet")]
    assert list_input_uris(("a.parquet", "b.parquet")) == ["a.parquet", "b.parquet"]
    with pytest.raises(UserError, match="No training input"):
        list_input_uris([])
    with pytest.raises(UserError, match=r"a\.parquet is given twice"):
        list_input_uris(["a.parquet", "b.parquet", "a.parquet"])


def put_outputs(s3_env, prefix: str, keys: list[str]) -> None:
    """Tiny objects at ``<prefix>/<key>``: selection only lists keys, it never reads them."""
    client = s3_env.s3_client()
    for key in keys:
        client.put_object(Bucket=s3_env.bucket, Key=f"{prefix}/{key}", Body=b"x")


@pytest.mark.integration
def test_selection_on_s3_picks_the_outputs_and_ignores_other_objects(s3_env):
    prefix = f"select-{uuid.uuid4().hex[:8]}/processed"
    keys = ["2024/trips.parquet", "2025/trips.parquet", "2025-01/trips.parquet", "2025-02/trips.parquet"]
    keys += ["2025-03/trips.parquet", "2025-02/trips.quarantine.parquet", "2025-04/trips.parquet.tmp-1"]
    keys += ["2024-06/trips.quality.json", "misc/trips.parquet", "2024-05/old/trips.parquet"]
    put_outputs(s3_env, prefix, keys)
    settings = (s3_env | {"TO_BIKES_PROCESSED_PREFIX": prefix}).settings()
    base = f"s3://{s3_env.bucket}/{prefix}"
    expected = [f"{base}/{p}/trips.parquet" for p in ("2024", "2025-01", "2025-02", "2025-03")]
    assert select_training_inputs(settings, "2025-03") == expected
    assert select_training_inputs(settings, "2025") == [f"{base}/2025/trips.parquet"]
    with pytest.raises(UserError, match="No processed output for 2025-04"):
        select_training_inputs(settings, "2025-04")


@pytest.mark.integration
def test_selection_on_s3_refuses_a_single_month(s3_env):
    prefix = f"select-{uuid.uuid4().hex[:8]}/processed"
    put_outputs(s3_env, prefix, ["2025-03/trips.parquet", "2025-03/trips.quarantine.parquet"])
    settings = (s3_env | {"TO_BIKES_PROCESSED_PREFIX": prefix}).settings()
    with pytest.raises(UserError, match="at least two months") as caught:
        select_training_inputs(settings, "2025-03")
    assert f"s3://{s3_env.bucket}/{prefix}/" in str(caught.value)


@pytest.mark.integration
def test_selection_names_a_missing_bucket_in_one_sentence(s3_env):
    settings = (s3_env | {"TO_BIKES_BUCKET": f"absent-{uuid.uuid4().hex[:8]}"}).settings()
    with pytest.raises(UserError, match="S3 request for s3://absent-"):
        select_training_inputs(settings, "2025-03")
