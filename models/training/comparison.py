"""Scoring the champion beside the new model on trips that neither of them trained on.

The gate's rule (``models.registry.gate.choose_comparison_month``) needs each model's training window:
the new model's comes from the months of its inputs, the champion's from the tags its version (or its
run) carries. When the champion trained on the new model's validation month, the month compared on
is a later one read from the processed outputs on S3 (``processed/<period>/trips.parquet``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from models.core import storage
from models.core.names import CHAMPION, LABEL_COLUMN
from models.core.periods import format_month_ranges, month_key, parse_month_ranges
from models.core.settings import Settings
from models.data.features import TIME_COLUMN
from models.registry.gate import Comparison, Window, choose_comparison_month
from models.registry.mlflow_client import find_alias_version, load_sklearn_model
from models.training.candidates import Evaluation
from models.training.dataset import (
    LABELS,
    MIN_VALID_ROWS,
    Split,
    TrainingData,
    month_keys,
    read_training_inputs,
    select_features,
)
from models.training.inputs import OUTPUT_NAME, list_processed_periods
from models.training.metrics import compute_metrics, member_probability

log = logging.getLogger(__name__)

TRAIN_MONTHS_TAG = "data.train_months"  # compact month ranges, e.g. 2025-01..2025-11
VALID_MONTH_TAG = "data.valid_month"
LOAD_ERRORS = (mlflow.exceptions.MlflowException, OSError, ValueError, KeyError, AttributeError)


def describe_window(data: TrainingData, split: Split) -> Window:
    """The new model's window: the months of its inputs, the latest being its validation month."""
    months = {month for item in data.inputs for month in item.months} - {split.valid_month}
    return Window(tuple(sorted(months, key=month_key)), split.valid_month)


def window_tags(window: Window) -> dict[str, str]:
    """The tags (and params) that record a window on a run and on a model version."""
    return {TRAIN_MONTHS_TAG: format_month_ranges(window.train_months), VALID_MONTH_TAG: window.valid_month}


def read_window(client: MlflowClient, version: ModelVersion) -> Window:
    """A registered version's window: its tags, else its run's, else the months of the run's inputs.json."""
    tags = dict(version.tags)
    if TRAIN_MONTHS_TAG not in tags:
        tags = {**client.get_run(version.run_id).data.tags, **tags}
    valid = tags.get(VALID_MONTH_TAG) or tags.get("validation.month") or ""
    if TRAIN_MONTHS_TAG in tags:
        return Window(tuple(parse_month_ranges(tags[TRAIN_MONTHS_TAG])), valid)
    try:
        inputs = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/inputs.json")["inputs"]
    except LOAD_ERRORS as exc:
        log.warning("version %s records no training months (%s)", version.version, exc)
        return Window((), valid)
    months = {month for item in inputs for month in item["months"]} - {valid}
    return Window(tuple(sorted(months, key=month_key)), valid)


def list_month_sources(inputs: Sequence[str], settings: Settings) -> dict[str, str]:
    """Month -> processed output that may hold it (a month's own output first, else its year's).

    Only when the run read its inputs from S3: local inputs have no processed outputs to look in.
    """
    if not inputs or not all(storage.is_s3(uri) for uri in inputs):
        return {}
    sources: dict[str, str] = {}
    for period in sorted(list_processed_periods(settings), key=len):  # years first, months override
        uri = settings.s3_uri(settings.processed_prefix, period, OUTPUT_NAME)
        months = [f"{period}-{m:02d}" for m in range(1, 13)] if len(period) == 4 else [period]
        sources.update(dict.fromkeys(months, uri))
    return sources


def read_month_rows(
    uri: str, month: str, settings: Settings, cache: dict[str, pd.DataFrame]
) -> pd.DataFrame | None:
    """The month's trips in ``uri`` when there are enough of both kinds to score on, else None."""
    if uri not in cache:
        cache[uri] = read_training_inputs([uri], settings).frame
    frame = cache[uri]
    rows = frame.loc[month_keys(frame[TIME_COLUMN]) == month_key(month)]
    if len(rows) < MIN_VALID_ROWS or set(rows[LABEL_COLUMN].unique()) != set(LABELS):
        log.info("%s holds %s trip(s) of %s: too few to compare on", uri, len(rows), month)
        return None
    return rows


def find_honest_rows(
    challenger: Window, champion: Window, version: str, sources: dict[str, str], settings: Settings
) -> tuple[Comparison, pd.DataFrame | None]:
    """The month to compare on and its trips (None: the validation rows, or no month at all)."""
    available, cache = dict(sources), {}
    while True:
        comparison = choose_comparison_month(challenger, champion, version, available)
        if comparison.month in (None, challenger.valid_month):
            return comparison, None
        rows = read_month_rows(available[comparison.month], comparison.month, settings, cache)
        if rows is not None:
            return comparison, rows
        del available[comparison.month]


def score_champion(
    client: MlflowClient,
    model_name: str,
    evaluation: Evaluation,
    model: Any,
    window: Window,
    settings: Settings,
    inputs: Sequence[str],
) -> None:
    """Score the registry's champion (if any) and the new model on the month neither trained on.

    A champion that cannot be loaded or scored is logged as a warning and left unscored: the gate
    then keeps it, since it cannot compare the two.
    """
    version = find_alias_version(client, model_name, CHAMPION)
    if version is None:
        evaluation.comparison = Comparison(window.valid_month, "there is no champion yet")
        return
    evaluation.champion_version, evaluation.champion_run_id = str(version.version), version.run_id
    champion_window = read_window(client, version)
    needs_later = window.valid_month in champion_window.train_months
    sources = list_month_sources(inputs, settings) if needs_later else {}
    comparison, rows = find_honest_rows(window, champion_window, str(version.version), sources, settings)
    evaluation.comparison = comparison
    log.info("comparison with champion version %s: %s", version.version, comparison.reason)
    if comparison.month is None:
        return
    features = evaluation.features if rows is None else select_features(rows)
    labels = evaluation.labels if rows is None else rows[LABEL_COLUMN].to_numpy()
    try:
        p_champion = member_probability(
            load_sklearn_model(f"models:/{model_name}/{version.version}"), features
        )
    except LOAD_ERRORS as exc:
        log.warning("could not score %s version %s: %s", model_name, version.version, exc)
        return
    p_model = evaluation.scores["model"] if rows is None else member_probability(model, features)
    if rows is None:
        evaluation.scores["champion"] = p_champion  # same rows as the validation plots
    evaluation.champion_metrics = compute_metrics(labels, p_champion)
    evaluation.compared_metrics = compute_metrics(labels, p_model)
