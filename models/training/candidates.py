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

from models.core.names import LABEL_COLUMN, POSITIVE_LABEL
from models.data.features import TIME_COLUMN
from models.registry.gate import Comparison
from models.training.dataset import Split, select_features
from models.training.estimator import SearchResult, build_baseline, build_pipeline, search_params
from models.training.metrics import compute_metrics, member_probability

log = logging.getLogger(__name__)

SEARCH_ROWS = 50_000  # stratified sample of the training months the search runs on; its latest 20% held out
FIT_ROWS = 400_000  # the one final fit: a stratified sample of this many training rows (all when fewer)
SAMPLING = "stratified by label: final fit seed + 1, search from it seed"  # recorded with each run


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


def sample_rows(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """About ``limit`` rows drawn with the member share of ``frame`` (stratified), in frame order.

    All rows when there are fewer. Each class keeps ``limit / len(frame)`` of its rows, drawn by
    position with NumPy: at 7.1M trips scikit-learn's stratified split took 7 s and pandas' grouped
    ``sample`` 4 s, this well under one.
    """
    if len(frame) <= limit:
        return frame
    rng = np.random.default_rng(seed)
    is_member = (frame[LABEL_COLUMN] == POSITIVE_LABEL).to_numpy()
    picked = []
    for rows in (np.flatnonzero(is_member), np.flatnonzero(~is_member)):
        picked.append(rng.choice(rows, size=round(len(rows) * limit / len(frame)), replace=False))
    return frame.iloc[np.sort(np.concatenate(picked))]


def fit_baseline(labels: pd.Series) -> Any:
    """The prior baseline, fitted on the class counts as weights: the same shares as one row per trip."""
    counts = labels.value_counts()
    classes = counts.index.to_numpy(dtype=object)
    return build_baseline().fit(np.zeros((len(classes), 1)), classes, sample_weight=counts.to_numpy())


def fit_candidates(
    split: Split,
    *,
    max_evals: int,
    time_budget_s: float,
    seed: int,
    search_rows: int = SEARCH_ROWS,
    fit_rows: int = FIT_ROWS,
) -> Fitted:
    """Search on a stratified sample of the training months, then refit the best parameters once.

    The final fit takes ``fit_rows`` rows (drawn with ``seed + 1``) and early-stops on its own 10%
    (see ``build_pipeline``); the search (at most ``max_evals`` trials and ``time_budget_s`` seconds)
    runs on ``search_rows`` of those, fitting on the earlier 80% and scoring on the latest 20%, so
    the training months are sampled once. The baseline only needs the labels.
    """
    fit_frame = sample_rows(split.train, fit_rows, seed + 1)
    search_fit, search_holdout = split_holdout(sample_rows(fit_frame, search_rows, seed))
    search = search_params(
        select_features(search_fit),
        search_fit[LABEL_COLUMN].to_numpy(),
        select_features(search_holdout),
        search_holdout[LABEL_COLUMN].to_numpy(),
        max_evals=max_evals,
        time_budget_s=time_budget_s,
        seed=seed,
    )
    model = build_pipeline(search.best_params, seed).fit(
        select_features(fit_frame), fit_frame[LABEL_COLUMN].to_numpy()
    )
    log.info("final fit on %s of %s training trips", len(fit_frame), len(split.train))
    baseline = fit_baseline(split.train[LABEL_COLUMN])
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
