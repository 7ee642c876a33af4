"""The Evidently report of a scored month against the model's reference sample.

One ``Report`` with Evidently's ``ClassificationPreset`` (the month's real quality: every trip carries its
true label) and ``DataDriftPreset`` over the model's features (Evidently picks each column's test by
type and sample size). Its HTML is what a person opens; ``read_drift`` takes the per-feature verdicts
from the report's own tests, so the numbers in the flow and in the HTML are the same.

The drift share the verdict compares with its limit counts only the features that can be judged
(``explain_unjudged``): the calendar features are fixed by the period, so two months differ in them by
construction; a station feature on a few hundred trips spread over hundreds of stations has too few trips per
station for a test of their shares, which then flags samples of one distribution as drifted. Both are still
measured and shown; the HTML's own dataset-drift figure counts every feature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from models.core.names import POSITIVE_LABEL
from models.data.features import (
    CALENDAR_FEATURES,
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    NUMERIC_FEATURES,
)
from models.scoring.reference import PREDICTED_COLUMN, PROBABILITY_COLUMN

# Evidently sends usage telemetry from its UI service unless DO_NOT_TRACK is set (evidently/telemetry.py);
# the report API sends none, and the variable is set anyway before Evidently is imported.
DO_NOT_TRACK_ENV = "DO_NOT_TRACK"
DRIFT_TEST_PREFIX = "Value Drift for column "
# Cochran's rule for a chi-square test: at least 5 expected counts per category. A categorical feature is
# judged only when each sample holds this many trips per category seen in the two samples together.
MIN_TRIPS_PER_CATEGORY = 5
CALENDAR_REASON = "calendar: fixed by the period"


@dataclass(frozen=True)
class DriftReport:
    """The report object (for its HTML), each feature's drift score and test verdict, and which count.

    ``unjudged``: the features left out of the drift share, each with why (``explain_unjudged``).
    """

    report: Any
    scores: dict[str, float]
    drifted: dict[str, bool]
    unjudged: dict[str, str] = field(default_factory=dict)

    @property
    def judged(self) -> list[str]:
        """The measured features whose verdict counts."""
        return [column for column in self.drifted if column not in self.unjudged]

    @property
    def drift_share(self) -> float:
        """The share of the judged features that drifted; 0 when none can be judged."""
        judged = self.judged
        return sum(self.drifted[column] for column in judged) / len(judged) if judged else 0.0

    def summarise(self) -> dict[str, Any]:
        """The monitoring summary's drift fields (``drifted``: the judged features that drifted)."""
        return {
            "drift_scores": self.scores,
            "drift_judged": self.judged,
            "drifted": [column for column in self.judged if self.drifted[column]],
            "drift_not_judged": self.unjudged,
            "drifted_not_judged": [column for column in self.unjudged if self.drifted.get(column)],
            "drift_share": self.drift_share,
        }


def count_categories(current: pd.Series, reference: pd.Series, noun: str) -> str | None:
    """Why a categorical feature cannot be judged on these samples, or None when it can.

    Both samples need ``MIN_TRIPS_PER_CATEGORY`` trips (with a value) per category seen in either.
    """
    categories = int(pd.concat([current, reference]).nunique())
    needed = MIN_TRIPS_PER_CATEGORY * max(categories, 1)
    trips = int(min(current.count(), reference.count()))
    if trips >= needed:
        return None
    return f"too few trips: {trips:,} for {categories:,} {noun}, needs {needed:,}"


def explain_unjudged(current: pd.DataFrame, reference: pd.DataFrame) -> dict[str, str]:
    """The features left out of the drift share, in ``FEATURE_COLUMNS`` order, each with a short why."""
    reasons = dict.fromkeys(CALENDAR_FEATURES, CALENDAR_REASON)
    for column in CATEGORICAL_FEATURES:
        noun = "stations" if column.endswith("station_id") else "categories"
        reason = count_categories(current[column], reference[column], noun)
        if reason is not None:
            reasons[column] = reason
    return {column: reasons[column] for column in FEATURE_COLUMNS if column in reasons}


def import_evidently() -> Any:
    """Evidently's module, telemetry off, on pandas 3.

    Evidently 0.7.23 imports ``pandas.core.dtypes.common.infer_dtype_from_object``, which pandas 3 removed,
    from a legacy column-type test this project never runs; the name is given back (as pandas 2 defined
    it for dtypes) so that the import succeeds.
    """
    os.environ.setdefault(DO_NOT_TRACK_ENV, "1")
    import pandas.core.dtypes.common as dtypes_common

    if not hasattr(dtypes_common, "infer_dtype_from_object"):
        dtypes_common.infer_dtype_from_object = lambda dtype: pd.api.types.pandas_dtype(dtype).type
    import evidently

    return evidently


def build_dataset(frame: pd.DataFrame) -> Any:
    """An Evidently ``Dataset``: numeric and station features, the label, P(member) and the prediction."""
    evidently = import_evidently()
    definition = evidently.DataDefinition(
        numerical_columns=[*NUMERIC_FEATURES, PROBABILITY_COLUMN],
        categorical_columns=[*CATEGORICAL_FEATURES, LABEL_COLUMN, PREDICTED_COLUMN],
        classification=[
            evidently.BinaryClassification(
                target=LABEL_COLUMN,
                prediction_labels=PREDICTED_COLUMN,
                prediction_probas=PROBABILITY_COLUMN,
                pos_label=POSITIVE_LABEL,
            )
        ],
    )
    columns = [*FEATURE_COLUMNS, LABEL_COLUMN, PROBABILITY_COLUMN, PREDICTED_COLUMN]
    return evidently.Dataset.from_pandas(frame[columns].reset_index(drop=True), data_definition=definition)


def build_report(current: pd.DataFrame, reference: pd.DataFrame, drift_share: float) -> DriftReport:
    """Run the report; ``drift_share`` is the dataset-drift threshold Evidently shows."""
    evidently = import_evidently()
    from evidently.presets import ClassificationPreset, DataDriftPreset

    report = evidently.Report(
        [ClassificationPreset(), DataDriftPreset(columns=FEATURE_COLUMNS, drift_share=drift_share)],
        include_tests=True,
    )
    snapshot = report.run(current_data=build_dataset(current), reference_data=build_dataset(reference))
    scores, drifted = read_drift(snapshot.dict())
    return DriftReport(snapshot, scores, drifted, explain_unjudged(current, reference))


def read_drift(result: dict[str, Any]) -> tuple[dict[str, float], dict[str, bool]]:
    """Each feature's drift score (``ValueDrift``) and verdict (its drift test failed)."""
    scores = {}
    for metric in result["metrics"]:
        column = metric.get("config", {}).get("column")
        if metric["config"].get("type", "").endswith(":ValueDrift") and column in FEATURE_COLUMNS:
            scores[column] = float(metric["value"])
    drifted = {}
    for test in result.get("tests", []):
        name = str(test.get("name", ""))
        if name.startswith(DRIFT_TEST_PREFIX) and name[len(DRIFT_TEST_PREFIX) :] in FEATURE_COLUMNS:
            drifted[name[len(DRIFT_TEST_PREFIX) :]] = str(test.get("status", "")).upper().endswith("FAIL")
    return scores, {column: drifted.get(column, False) for column in scores}


def describe_drift(summary: dict[str, Any]) -> str:
    """One line for a person: the drift share, which judged features drifted, which were not judged and why.

    A summary written before features were left out (no ``drift_judged``) counted every feature.
    """
    drifted = ", ".join(summary["drifted"]) or "none"
    if "drift_judged" not in summary:
        return f"drifted features {summary['drift_share']:.0%} ({drifted})"
    judged = summary["drift_judged"]
    if judged:
        head = f"drift {summary['drift_share']:.0%}: {len(summary['drifted'])} of {len(judged)} judged "
        head += f"features drifted ({drifted})"
    else:
        head = "drift not judged: no feature can be judged (drift share 0%)"
    grouped: dict[str, list[str]] = {}
    for column in sorted(summary["drift_not_judged"], key=FEATURE_COLUMNS.index):
        grouped.setdefault(summary["drift_not_judged"][column], []).append(column)
    left_out = "; ".join(f"{', '.join(columns)} ({reason})" for reason, columns in grouped.items())
    return f"{head}; not judged: {left_out}" if left_out else head
