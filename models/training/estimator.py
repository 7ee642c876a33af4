"""The model, its baseline and a small time-boxed hyper-parameter search.

The model is a pure scikit-learn pipeline (nothing from this project is pickled inside it), so it
loads anywhere scikit-learn does: stations are ordinal-encoded with rare ones grouped into one
"infrequent" code (cardinality stays within the booster's 255 bins) and unseen ones as missing,
then a HistGradientBoostingClassifier treats them as native categories.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from models.data.features import CATEGORICAL_FEATURES
from models.training.metrics import compute_metrics, member_probability

log = logging.getLogger(__name__)

MAX_BINS = 255  # the booster's limit on categories per feature; stations beyond it are grouped
MAX_ITER = 300
SELECTION_METRIC = "roc_auc"
DEFAULT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 0.0,
    "max_features": 1.0,
}


@dataclass
class SearchResult:
    """The best parameters found, their hold-out score and every trial (for the run's record)."""

    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    best_trial: int = 0


def build_baseline() -> DummyClassifier:
    """The floor every model must clear: always predict the training share of members."""
    return DummyClassifier(strategy="prior")


def build_pipeline(params: dict[str, Any], seed: int) -> Pipeline:
    """Station encoder plus gradient boosting with the given hyper-parameters."""
    stations = OrdinalEncoder(
        max_categories=MAX_BINS,
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
    )
    encode = ColumnTransformer(
        [("stations", stations, CATEGORICAL_FEATURES)],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    booster = HistGradientBoostingClassifier(
        categorical_features=CATEGORICAL_FEATURES,
        max_bins=MAX_BINS,
        max_iter=MAX_ITER,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=seed,
        **params,
    )
    return Pipeline([("encode", encode), ("model", booster)])


def sample_params(rng: np.random.Generator) -> dict[str, Any]:
    """One random point of the search space (log-uniform for rates and penalties).

    Rates start at 0.1: on a full year 0.05 grew 228 trees where 0.1 stopped at 92 (fitting and every
    prediction cost as much more) for a gain within the search hold-out's noise.
    """
    return {
        "learning_rate": float(np.exp(rng.uniform(np.log(0.1), np.log(0.3)))),
        "max_leaf_nodes": int(rng.choice([15, 31, 63, 127])),
        "min_samples_leaf": int(rng.choice([20, 50, 100, 200, 500])),
        "l2_regularization": float(rng.choice([0.0, 0.01, 0.1, 1.0, 10.0])),
        "max_features": float(rng.choice([0.5, 0.8, 1.0])),
    }


def search_params(
    x_fit: pd.DataFrame,
    y_fit: np.ndarray,
    x_holdout: pd.DataFrame,
    y_holdout: np.ndarray,
    *,
    max_evals: int,
    time_budget_s: float,
    seed: int,
) -> SearchResult:
    """Random search scored on a later hold-out; stops after ``max_evals`` trials or the time budget.

    The first trial is always the defaults, so the search can only improve on them. A trial is not
    started when the time left is shorter than the slowest trial so far.
    """
    rng = np.random.default_rng(seed)
    started = time.monotonic()
    result = SearchResult(best_params=dict(DEFAULT_PARAMS), best_score=-np.inf)
    slowest = 0.0
    for trial in range(max(1, max_evals)):
        elapsed = time.monotonic() - started
        if trial > 0 and elapsed + slowest > time_budget_s:
            log.info("search: time budget %.0f s reached after %s trial(s)", time_budget_s, trial)
            break
        params = dict(DEFAULT_PARAMS) if trial == 0 else sample_params(rng)
        tick = time.monotonic()
        model = build_pipeline(params, seed).fit(x_fit, y_fit)
        fit_seconds = time.monotonic() - tick
        score = compute_metrics(y_holdout, member_probability(model, x_holdout))[SELECTION_METRIC]
        slowest = max(slowest, time.monotonic() - tick)
        n_iter = int(model.named_steps["model"].n_iter_)
        record = {SELECTION_METRIC: score, "fit_seconds": fit_seconds, "n_iter": n_iter, "rows": len(x_fit)}
        result.trials.append({**params, **record})
        log.info("search trial %s: %s=%.4f %s", trial, SELECTION_METRIC, score, params)
        if score > result.best_score:
            result.best_params, result.best_score, result.best_trial = params, score, trial
    return result


def choose_threads(requested: int | None = None) -> int:
    """OpenMP threads for the booster: the cores that are idle now, at least one.

    On a busy machine two spinning OpenMP threads run several times slower than one, so the 1-minute
    load average decides unless a number is requested.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if requested:
        return max(1, min(requested, cores))
    idle = cores - os.getloadavg()[0]
    return max(1, min(cores, int(idle + 0.5)))
