"""Whether a monitored period is one the champion learnt from: what its figures can and cannot show.

A month the champion trained on scores as well as the model fits its own training rows: its ROC AUC
says nothing of how the model does on new trips, so it can never reveal a worse model. Such a period is
reported ``in-sample`` (``models.scoring.monitor``), never an AUC breach. The champion's validation
month was held out from training, but it is the month the gate judged the champion on: its figures are
the validation figures themselves, and the summary says so. The window is the one training recorded
on the version (``data.train_months``, ``data.valid_month``; ``models.training.comparison``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient

from models.core.periods import format_month_ranges, is_month
from models.registry.gate import Window
from models.training.comparison import read_window

IN_SAMPLE, VALIDATION, OUT_OF_SAMPLE, UNKNOWN = "in-sample", "validation", "out-of-sample", "unknown"


@dataclass(frozen=True)
class Coverage:
    """How a period relates to the champion's window: its kind and one sentence a person reads."""

    kind: str  # IN_SAMPLE, VALIDATION, OUT_OF_SAMPLE or UNKNOWN (the version records no window)
    note: str

    @property
    def in_sample(self) -> bool:
        return self.kind == IN_SAMPLE


def period_months(period: str) -> list[str]:
    """The months of a period: itself, or the twelve months of a year."""
    return [period] if is_month(period) else [f"{period}-{m:02d}" for m in range(1, 13)]


def read_champion_window(client: MlflowClient, name: str, version: str) -> Window:
    """The months version ``version`` of ``name`` trained on and was validated on."""
    return read_window(client, client.get_model_version(name, version))


def classify_period(period: str, window: Window, version: str) -> Coverage:
    """In-sample when the champion trained on any month of ``period``; else validation, or out of sample."""
    if not window.train_months:
        return Coverage(UNKNOWN, f"version {version} records no training months")
    trained = [month for month in period_months(period) if month in window.train_months]
    span = format_month_ranges(window.train_months)
    if trained:
        return Coverage(
            IN_SAMPLE,
            f"version {version} trained on {format_month_ranges(trained)} (training window {span}): "
            "in-sample figures cannot show a worse model",
        )
    if window.valid_month in period_months(period):
        return Coverage(
            VALIDATION,
            f"{window.valid_month} is version {version}'s validation month: its figures are the ones the "
            "gate judged it on",
        )
    return Coverage(OUT_OF_SAMPLE, f"version {version} never trained on {period} (training window {span})")
