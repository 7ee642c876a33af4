"""Periods: the one parser of YYYY / YYYY-MM and its one-sentence errors."""

from __future__ import annotations

import pytest

from models.core.errors import UserError
from models.core.periods import (
    check_period,
    format_month,
    format_period,
    month_key,
    month_range,
    months_before,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("period", ["2025", "2025-01", "2025-12", "2017-06"])
def test_years_and_months_are_periods(period):
    assert check_period(period) == period


@pytest.mark.parametrize("period", ["20x5", "2025-13", "2025-00", "2025-1", "25", "2025/03", ""])
def test_anything_else_is_one_sentence(period):
    with pytest.raises(UserError, match=r"is not YYYY or YYYY-MM\.$"):
        check_period(period)


def test_format_period_checks_year_and_month():
    assert format_period(2025) == "2025"
    assert format_period(2025, 3) == "2025-03"
    assert format_period("2025", "12") == "2025-12"
    with pytest.raises(UserError, match="year='20x5' is not a four-digit year"):
        format_period("20x5")
    with pytest.raises(UserError, match="month=13 is not between 1 and 12"):
        format_period(2025, 13)
    with pytest.raises(UserError, match="month='x' is not between 1 and 12"):
        format_period(2025, "x")


def test_month_keys_round_trip_across_years():
    assert format_month(month_key("2024-12") + 1) == "2025-01"
    assert months_before("2025-02", 3) == ["2024-11", "2024-12", "2025-01"]


def test_month_range_is_inclusive_and_ordered():
    assert month_range("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]
    with pytest.raises(UserError, match="FROM=2025-03 is after TO=2025-01"):
        month_range("2025-03", "2025-01")
    with pytest.raises(UserError, match="TO='2025-13' is not a month like 2024-01"):
        month_range("2025-01", "2025-13")


def test_month_lists_are_written_as_compact_ranges_and_read_back():
    from models.core.periods import format_month_ranges, parse_month_ranges

    months = ["2025-02", "2024-12", "2025-01", "2025-05", "2024-03"]
    assert format_month_ranges(months) == "2024-03,2024-12..2025-02,2025-05"
    assert parse_month_ranges("2024-03,2024-12..2025-02,2025-05") == sorted(months)
    assert format_month_ranges([]) == "" and parse_month_ranges("") == []
    with pytest.raises(UserError, match="month range"):
        parse_month_ranges("2025-03..2025-01")
