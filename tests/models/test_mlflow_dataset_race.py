"""Logging a data set that a concurrent run stored a moment earlier (MLflow's look-up-then-insert race)."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow.exceptions import MlflowException, RestException

from models.training import mlflow_run

pytestmark = pytest.mark.unit

RACE = "BAD_REQUEST: (sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name"


class _Dataset:
    name = "2025/trips.parquet (validation 2025-12)"


def failing_first(error: Exception, calls: list[Any]) -> Any:
    def log_input(dataset: Any, context: str) -> None:
        calls.append((dataset, context))
        if len(calls) == 1:
            raise error

    return log_input


def test_a_unique_constraint_race_is_retried_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    error = RestException({"error_code": "BAD_REQUEST", "message": RACE})
    monkeypatch.setattr(mlflow_run.mlflow, "log_input", failing_first(error, calls))
    mlflow_run.log_input_once(_Dataset())
    assert len(calls) == 2 and calls[1][1] == "training"


def test_other_mlflow_errors_are_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(
        mlflow_run.mlflow, "log_input", failing_first(MlflowException("permission denied"), calls)
    )
    with pytest.raises(MlflowException, match="permission denied"):
        mlflow_run.log_input_once(_Dataset())
    assert len(calls) == 1
