"""The Evidently report of a scored month against the model's reference sample.

One ``Report`` with Evidently's ``ClassificationPreset`` (the month's real quality: every trip carries its
true label) and ``DataDriftPreset`` over the model's features (Evidently picks each column's test by
type and sample size). Its HTML is what a person opens; ``read_drift`` takes the per-feature verdicts
from the report's own tests, so the numbers in the flow and in the HTML are the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from models.core.names import POSITIVE_LABEL
from models.data.features import CATEGORICAL_FEATURES, FEATURE_COLUMNS, LABEL_COLUMN, NUMERIC_FEATURES
from models.scoring.reference import PREDICTED_COLUMN, PROBABILITY_COLUMN

# Evidently sends usage telemetry from its UI service unless DO_NOT_TRACK is set (evidently/telemetry.py);
# the report API sends none, and the variable is set anyway before Evidently is imported.
DO_NOT_TRACK_ENV = "DO_NOT_TRACK"
DRIFT_TEST_PREFIX = "Value Drift for column "


@dataclass(frozen=True)
class DriftReport:
    """The report object (for its HTML), each feature's drift score and verdict, and the drifted share."""

    report: Any
    scores: dict[str, float]
    drifted: dict[str, bool]

    @property
    def drift_share(self) -> float:
        return sum(self.drifted.values()) / len(self.drifted) if self.drifted else 0.0


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
    return DriftReport(snapshot, scores, drifted)


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
