"""The candidates of a training run: the model and the baseline, fitted, then scored on the validation month.

Kept apart from ``models.training.train`` (which adds the champion and logs the run) so that
``models.training.mlflow_run`` can take these results without importing the module that calls it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.core.names import LABEL_COLUMN
from models.data.features import TIME_COLUMN
from models.registry.gate import Comparison
from models.training.dataset import Split, select_features
from models.training.estimator import (
    SearchResult,
    build_baseline,
    build_pipeline,
    estimate_fit_rows,
    search_params,
    take_rows,
)
from models.training.metrics import compute_metrics, member_probability

log = logging.getLogger(__name__)

SEARCH_ROWS = 200_000  # rows (from the training months) the search fits on; 20% latest held out
FIT_ROWS = 2_000_000  # at most this many rows for the final fit: more adds little, costs seconds


@dataclass
class Fitted:
    """The trained model, the baseline and how the model's parameters were chosen."""

    model: Any
    baseline: Any
    search: SearchResult
    fit_rows: int
    search_rows: int


@dataclass
class Evaluation:
    """Validation labels, features and each model's P(member) and metrics on them.

    The champion is scored on the month the gate compares on (``comparison``), which is the validation
    month only when the champion never trained on it.
    """

    labels: np.ndarray
    features: pd.DataFrame
    scores: dict[str, np.ndarray]
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None = None  # the champion on the compared month
    champion_version: str | None = None
    champion_run_id: str | None = None
    comparison: Comparison | None = None  # the month both models are compared on, and why
    compared_metrics: dict[str, float] | None = None  # the model on the compared month


def split_holdout(frame: pd.DataFrame, fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earlier rows for fitting, the latest ``fraction`` (by start time) for scoring search trials."""
    ordered = frame.sort_values(TIME_COLUMN, kind="stable")
    cut = int(len(ordered) * (1 - fraction))
    return ordered.iloc[:cut], ordered.iloc[cut:]


def fit_candidates(split: Split, *, max_evals: int, time_budget_s: float, seed: int) -> Fitted:
    """Search on a subsample of the training months, then fit on as many rows as the budget allows.

    Half of ``time_budget_s`` goes to the search, half to the final fit, whose row count comes from
    the best trial's speed; the baseline only needs the labels.
    """
    search_fit, search_holdout = split_holdout(take_rows(split.train, SEARCH_ROWS, seed))
    search = search_params(
        select_features(search_fit),
        search_fit[LABEL_COLUMN].to_numpy(),
        select_features(search_holdout),
        search_holdout[LABEL_COLUMN].to_numpy(),
        max_evals=max_evals,
        time_budget_s=time_budget_s / 2,
        seed=seed,
    )
    rows = estimate_fit_rows(search, time_budget_s / 2, len(split.train), FIT_ROWS)
    fit_frame = take_rows(split.train, rows, seed + 1)
    model = build_pipeline(search.best_params, seed).fit(
        select_features(fit_frame), fit_frame[LABEL_COLUMN].to_numpy()
    )
    log.info("final fit on %s of %s training trips", len(fit_frame), len(split.train))
    labels = split.train[LABEL_COLUMN].to_numpy()
    baseline = build_baseline().fit(np.zeros((len(labels), 1)), labels)
    searched = len(search_fit) + len(search_holdout)
    return Fitted(model, baseline, search, fit_rows=len(fit_frame), search_rows=searched)


def evaluate_candidates(fitted: Fitted, split: Split) -> Evaluation:
    """Score the model and the baseline on the validation month."""
    features = select_features(split.valid)
    labels = split.valid[LABEL_COLUMN].to_numpy()
    p_model = member_probability(fitted.model, features)
    p_baseline = member_probability(fitted.baseline, np.zeros((len(labels), 1)))
    return Evaluation(
        labels=labels,
        features=features,
        scores={"model": p_model, "baseline": p_baseline},
        metrics=compute_metrics(labels, p_model),
        baseline_metrics=compute_metrics(labels, p_baseline),
    )
