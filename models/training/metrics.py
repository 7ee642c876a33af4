"""Validation metrics shared by training, the baseline and the champion/challenger gate.

Every model (baseline, candidate, current champion) is scored by the same function on the same
validation month, so their numbers can be compared directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    roc_auc_score,
)

from models.core.names import POSITIVE_LABEL

THRESHOLD = 0.5
EPSILON = 1e-15


def member_probability(model: Any, features: pd.DataFrame) -> np.ndarray:
    """P(member) for each row, whatever order the model keeps its classes in."""
    classes = list(model.classes_)
    return model.predict_proba(features)[:, classes.index(POSITIVE_LABEL)]


def compute_metrics(labels: np.ndarray, p_member: np.ndarray) -> dict[str, float]:
    """ROC AUC (member), PR AUC (casual), F1 per class, accuracy, log loss and Brier score.

    Ranking metrics are NaN when the labels hold one class only (there is nothing to rank).
    """
    is_member = np.asarray(labels) == POSITIVE_LABEL
    p_member = np.clip(np.asarray(p_member, dtype="float64"), EPSILON, 1 - EPSILON)
    predicted = p_member >= THRESHOLD
    both = 0 < is_member.sum() < len(is_member)
    return {
        "roc_auc": float(roc_auc_score(is_member, p_member)) if both else float("nan"),
        "pr_auc_casual": float(average_precision_score(~is_member, 1 - p_member)) if both else float("nan"),
        "f1_member": float(f1_score(is_member, predicted, zero_division=0)),
        "f1_casual": float(f1_score(~is_member, ~predicted, zero_division=0)),
        "accuracy": float(accuracy_score(is_member, predicted)),
        "log_loss": float(log_loss(is_member, p_member, labels=[False, True])),
        "brier": float(brier_score_loss(is_member, p_member)),
    }


def prefix_metrics(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """The same metrics under ``<prefix>_<name>`` keys, e.g. ``baseline_roc_auc``."""
    return {f"{prefix}_{name}": value for name, value in metrics.items()}


def compute_importance(
    model: Any, features: pd.DataFrame, labels: np.ndarray, *, seed: int, rows: int = 5_000
) -> dict[str, float]:
    """Permutation importance (drop in ROC AUC) on up to ``rows`` validation rows."""
    if len(features) > rows:
        picked = np.random.default_rng(seed).choice(len(features), size=rows, replace=False)
        features, labels = features.iloc[picked], np.asarray(labels)[picked]
    found = permutation_importance(
        model, features, labels, scoring="roc_auc", n_repeats=2, random_state=seed, n_jobs=1
    )
    return dict(zip(features.columns, map(float, found.importances_mean), strict=True))
