"""The gate's rule as pure functions: which month is honest to compare on, and what it decides."""

from __future__ import annotations

import pytest

from models.core.periods import month_range
from models.registry.gate import (
    CHALLENGER_SCORE,
    CHAMPION_SCORE,
    Window,
    choose_comparison_month,
    decide_promotion,
)

pytestmark = pytest.mark.unit

YEARLY = Window(tuple(month_range("2025-01", "2025-11")), "2025-12")  # make run YEAR=2025
MARCH = Window(("2025-01", "2025-02"), "2025-03")  # make run YEAR=2025 MONTH=3 after a backfill


def test_the_validation_month_when_the_champion_never_saw_it():
    february = Window(("2025-01",), "2025-02")
    found = choose_comparison_month(february, Window(("2024-12",), "2025-01"), "1", [])
    assert found.month == "2025-02" and found.reason == "champion version 1 never trained on 2025-02"


def test_a_month_the_champion_trained_on_is_never_compared_on():
    found = choose_comparison_month(MARCH, YEARLY, "1", month_range("2025-01", "2025-12"))
    assert found.month == "2025-12"  # after both windows; never 2025-03
    found = choose_comparison_month(MARCH, YEARLY, "1", month_range("2025-01", "2025-11"))
    assert found.month is None
    assert found.reason == (
        "champion version 1 trained on 2025-03 and no processed month after both training windows "
        "(after 2025-11) exists"
    )


def test_a_champion_without_recorded_months_is_not_compared():
    found = choose_comparison_month(MARCH, Window((), "2025-12"), "4", ["2026-01"])
    assert found.month is None and "does not record the months it trained on" in found.reason


def decide(metrics, tags, version="2", champion="1"):
    base = {"roc_auc": 0.9, "baseline_roc_auc": 0.5}
    labels = {"data.valid_month": "2025-03", "champion.version": "1"}
    return decide_promotion({**base, **metrics}, {**labels, **tags}, version, champion, 0.002)


def test_no_honest_month_keeps_the_champion_and_says_why_in_one_sentence():
    reason = "champion version 1 trained on 2025-03 and no processed month ... exists"
    decision = decide({}, {"gate.compared_on": "none", "gate.comparison": reason})
    assert (decision.promote, decision.compared_on, decision.verdict) == (False, None, "kept-champion")
    assert decision.reason == f"No honest comparison: {reason}, so champion version 1 stays."


def test_scores_on_the_compared_month_decide():
    tags = {"gate.compared_on": "2025-12"}
    won = decide({CHALLENGER_SCORE: 0.95, CHAMPION_SCORE: 0.9}, tags)
    assert (won.promote, won.compared_on, won.challenger_score, won.champion_score) == (
        True,
        "2025-12",
        0.95,
        0.9,
    )
    assert won.reason == "roc_auc 0.9500 beats champion version 1's 0.9000 on 2025-12."
    lost = decide({CHALLENGER_SCORE: 0.901, CHAMPION_SCORE: 0.9}, tags)
    assert not lost.promote and "does not beat champion version 1's 0.9000 by more than 0.002" in lost.reason


def test_baseline_first_and_no_champion():
    assert not decide({"roc_auc": 0.501}, {}).promote
    first = decide({}, {}, version="1", champion=None)
    assert first.promote and first.reason.startswith("No champion yet")


def test_a_version_that_is_champion_already_is_no_promotion():
    again = decide({}, {}, version="1", champion="1")
    assert (again.promote, again.verdict) == (False, "already-champion")
    assert again.reason == "Version 1 is already champion (roc_auc 0.9000 on 2025-03); nothing changes."
