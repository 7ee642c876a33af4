"""The champion/challenger rule, as pure functions of what training runs recorded.

A comparison is honest only on trips that neither model trained on. ``choose_comparison_month`` picks
that month from the two models' training windows (``Window``): the challenger's validation month when
the champion never trained on it, else the latest processed month after both training windows, else
none. ``models.training.train`` scores both models on that month and logs the scores;
``decide_promotion`` only compares those numbers, so it never replaces a better model with a worse
one, and never compares numbers from different data or from a month either model learnt from.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from models.core.periods import month_key

GATE_METRIC = "roc_auc"  # higher is better
COMPARED_ON_TAG = "gate.compared_on"  # the month both models were scored on, or "none"
COMPARISON_TAG = "gate.comparison"  # why that month, or why there was none
RERUN_TAG_PREFIX = "gate.rerun."  # + UTC time: one record per later registration, on the run
RERUN_RUN_SUFFIX = ", run "  # + run id: ends a version's rerun record made by another run of it
CHALLENGER_SCORE = f"gate_challenger_{GATE_METRIC}"  # metric: the challenger on the compared month
CHAMPION_SCORE = f"gate_champion_{GATE_METRIC}"  # metric: the champion on the compared month
NONE = "none"


@dataclass(frozen=True)
class Window:
    """The months a model trained on and the month it was validated on (``YYYY-MM``)."""

    train_months: tuple[str, ...]
    valid_month: str

    @property
    def last_trained(self) -> str:
        """The latest month it trained on."""
        return max(self.train_months, key=month_key)


@dataclass(frozen=True)
class Comparison:
    """The month both models are scored on (None: no honest month) and a sentence saying why."""

    month: str | None
    reason: str


PROMOTED, KEPT, ALREADY = "promoted", "kept-champion", "already-champion"  # Decision.verdict


def describe_verdict(verdict: str) -> str:
    """A verdict as a person reads it: a version already champion is no promotion, nothing moved."""
    return "already champion (no change)" if verdict == ALREADY else verdict


@dataclass(frozen=True)
class Decision:
    """Whether the run's version should be champion, why, and on which month with which scores.

    ``already``: the version holds the champion alias already, so nothing moves (a rerun).
    """

    promote: bool
    reason: str
    compared_on: str | None = None
    challenger_score: float | None = None
    champion_score: float | None = None
    already: bool = False

    @property
    def verdict(self) -> str:
        return ALREADY if self.already else PROMOTED if self.promote else KEPT


def choose_comparison_month(
    challenger: Window, champion: Window, champion_version: str, available: Collection[str]
) -> Comparison:
    """The month neither model trained on, as the gate's rule says (``available``: months that exist)."""
    valid = challenger.valid_month
    if not champion.train_months:
        return Comparison(
            None, f"champion version {champion_version} does not record the months it trained on"
        )
    if valid not in champion.train_months:
        return Comparison(valid, f"champion version {champion_version} never trained on {valid}")
    after = max(challenger.last_trained, champion.last_trained, key=month_key)
    later = [month for month in available if month_key(month) > month_key(after)]
    if not later:
        return Comparison(
            None,
            f"champion version {champion_version} trained on {valid} and no processed month after both "
            f"training windows (after {after}) exists",
        )
    month = max(later, key=month_key)
    return Comparison(
        month,
        f"champion version {champion_version} trained on {valid}; {month} is after both training windows",
    )


def read_metric(metrics: Mapping[str, float], key: str) -> float | None:
    """A logged metric, or None when it is missing or NaN."""
    value = metrics.get(key)
    return None if value is None or math.isnan(value) else float(value)


def decide_promotion(
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    version: str,
    champion_version: str | None,
    margin: float,
) -> Decision:
    """Promote only if the run beats the baseline, and the champion on an honest month, by ``margin``.

    The champion comparison uses the scores logged in the same run, and only when that run scored the
    version that is champion now; otherwise, or when no honest month existed, the champion stays.
    """
    new = read_metric(metrics, GATE_METRIC)
    baseline = read_metric(metrics, f"baseline_{GATE_METRIC}")
    valid = tags.get("data.valid_month") or tags.get("validation.month") or "the validation month"
    if new is None or baseline is None:
        return Decision(
            False, f"The run lacks {GATE_METRIC} or baseline_{GATE_METRIC}, so the champion stays."
        )
    if champion_version == version:
        return Decision(
            False,
            f"Version {version} is already champion ({GATE_METRIC} {new:.4f} on {valid}); nothing changes.",
            valid,
            new,
            already=True,
        )
    if new <= baseline + margin:
        return Decision(
            False,
            f"{GATE_METRIC} {new:.4f} on {valid} does not beat the baseline's {baseline:.4f} by more than "
            f"{margin}, so the champion stays.",
            valid,
            new,
        )
    if champion_version is None:
        return Decision(
            True,
            f"No champion yet and {GATE_METRIC} {new:.4f} on {valid} beats the baseline's {baseline:.4f}.",
            valid,
            new,
        )
    return compare_with_champion(metrics, tags, champion_version, margin)


def compare_with_champion(
    metrics: Mapping[str, float], tags: Mapping[str, str], champion_version: str, margin: float
) -> Decision:
    """The champion half of the rule: the champion of today, scored on a month neither model trained on."""
    scored = tags.get("champion.version")
    if scored != champion_version:
        return Decision(
            False,
            f"Champion is version {champion_version} but the run compared with {scored or NONE}, so the "
            "champion stays until a new run compares with it.",
        )
    month = tags.get(COMPARED_ON_TAG, NONE)
    if month == NONE:
        why = tags.get(COMPARISON_TAG) or "the run recorded no month to compare on"
        return Decision(False, f"No honest comparison: {why}, so champion version {champion_version} stays.")
    new, old = read_metric(metrics, CHALLENGER_SCORE), read_metric(metrics, CHAMPION_SCORE)
    if new is None or old is None:
        return Decision(
            False,
            f"The run could not score both models on {month}, so champion version {champion_version} stays.",
            month,
        )
    if new <= old + margin:
        return Decision(
            False,
            f"{GATE_METRIC} {new:.4f} on {month} does not beat champion version {champion_version}'s "
            f"{old:.4f} by more than {margin}, so the champion stays.",
            month,
            new,
            old,
        )
    return Decision(
        True,
        f"{GATE_METRIC} {new:.4f} beats champion version {champion_version}'s {old:.4f} on {month}.",
        month,
        new,
        old,
    )
