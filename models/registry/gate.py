"""The champion/challenger rule, as a pure function of what a training run logged.

``models.training.train`` scores the new model, the baseline and the then-current champion on the same
validation month and logs all three; this rule only compares those numbers, so it never replaces a
better model with a worse one, and never compares numbers from different data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

GATE_METRIC = "roc_auc"  # higher is better


@dataclass(frozen=True)
class Decision:
    """Whether the run's version should be champion, and a sentence saying why."""

    promote: bool
    reason: str

    @property
    def verdict(self) -> str:
        return "promoted" if self.promote else "kept-champion"


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
    """Promote only if the run beats the baseline and the current champion by more than ``margin``.

    The champion comparison uses the champion metrics logged in the same run, and only when that run
    scored the version that is champion now; otherwise the champion stays (retraining fixes it).
    """
    new = read_metric(metrics, GATE_METRIC)
    baseline = read_metric(metrics, f"baseline_{GATE_METRIC}")
    if new is None or baseline is None:
        return Decision(False, f"the run lacks {GATE_METRIC} or baseline_{GATE_METRIC}; champion unchanged")
    if champion_version == version:
        return Decision(True, f"version {version} is already champion ({GATE_METRIC} {new:.4f})")
    if new <= baseline + margin:
        return Decision(
            False,
            f"{GATE_METRIC} {new:.4f} does not beat the baseline's {baseline:.4f} by more than {margin}",
        )
    if champion_version is None:
        return Decision(True, f"no champion yet; {GATE_METRIC} {new:.4f} beats the baseline's {baseline:.4f}")
    return compare_with_champion(metrics, tags, new, champion_version, margin)


def compare_with_champion(
    metrics: Mapping[str, float], tags: Mapping[str, str], new: float, champion_version: str, margin: float
) -> Decision:
    """The champion half of the rule: same champion scored in the run, and beaten by the margin."""
    scored = tags.get("champion.version")
    if scored != champion_version:
        return Decision(
            False,
            f"champion is version {champion_version} but the run compared with {scored or 'none'}; "
            "retrain to compare on the same validation data",
        )
    old = read_metric(metrics, f"champion_{GATE_METRIC}")
    if old is None:
        return Decision(
            False, f"the run could not score champion version {champion_version}; champion unchanged"
        )
    if new <= old + margin:
        return Decision(
            False,
            f"{GATE_METRIC} {new:.4f} does not beat champion version {champion_version}'s {old:.4f} "
            f"by more than {margin}",
        )
    return Decision(True, f"{GATE_METRIC} {new:.4f} beats champion version {champion_version}'s {old:.4f}")
