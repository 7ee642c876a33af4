"""Diagnostic figures for a training run, drawn on the Agg canvas (no display, no pyplot state).

Each function takes validation labels and scores and returns a ``matplotlib.figure.Figure`` that the
caller logs to MLflow; nothing here touches files or servers.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from models.core.names import CLASS_NAMES, POSITIVE_LABEL
from models.training.metrics import THRESHOLD


def new_figure(title: str, size: tuple[float, float] = (5.0, 4.0)) -> tuple[Figure, object]:
    """A figure on the Agg canvas with one titled axes."""
    figure = Figure(figsize=size, layout="tight")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def plot_confusion(labels: np.ndarray, p_member: np.ndarray) -> Figure:
    """Counts of true vs predicted rider type at the 0.5 threshold."""
    # As booleans (False: casual, True: member, the order of CLASS_NAMES): no sorting of label strings.
    is_member = np.asarray(labels) == POSITIVE_LABEL
    counts = confusion_matrix(is_member, np.asarray(p_member) >= THRESHOLD, labels=[False, True])
    figure, axes = new_figure("Confusion matrix (validation)")
    axes.imshow(counts, cmap="Blues")
    for (row, col), value in np.ndenumerate(counts):
        colour = "white" if value > counts.max() / 2 else "black"
        axes.text(col, row, f"{value:,}", ha="center", va="center", color=colour)
    axes.set(xticks=[0, 1], yticks=[0, 1], xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES)
    axes.set(xlabel="predicted", ylabel="true")
    return figure


def plot_roc(labels: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """ROC curves (member positive) of each named model on the same validation rows."""
    figure, axes = new_figure("ROC (member positive)")
    for name, p_member in scores.items():
        fpr, tpr, _ = roc_curve(labels == POSITIVE_LABEL, p_member)
        axes.plot(fpr, tpr, label=name)
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate")
    axes.legend(loc="lower right")
    return figure


def plot_precision_recall(labels: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """Precision-recall curves for the minority class, casual riders."""
    figure, axes = new_figure("Precision-recall (casual positive)")
    for name, p_member in scores.items():
        precision, recall, _ = precision_recall_curve(labels != POSITIVE_LABEL, 1 - p_member)
        axes.plot(recall, precision, label=name)
    axes.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02))
    axes.legend(loc="upper right")
    return figure


def plot_calibration(labels: np.ndarray, p_member: np.ndarray, bins: int = 10) -> Figure:
    """Observed member share against predicted probability, by quantile bin."""
    observed, predicted = calibration_curve(
        labels == POSITIVE_LABEL, p_member, n_bins=bins, strategy="quantile"
    )
    figure, axes = new_figure("Calibration (member)")
    axes.plot(predicted, observed, marker="o", label="model")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect")
    axes.set(xlabel="predicted P(member)", ylabel="observed member share")
    axes.legend(loc="upper left")
    return figure


def plot_importance(importance: dict[str, float]) -> Figure:
    """Permutation importance (drop in ROC AUC when a feature is shuffled), largest on top."""
    ordered = sorted(importance.items(), key=lambda item: item[1])
    figure, axes = new_figure("Permutation importance (ROC AUC drop)", size=(6.0, 4.0))
    axes.barh([name for name, _ in ordered], [value for _, value in ordered])
    axes.set(xlabel="mean drop in ROC AUC")
    return figure
