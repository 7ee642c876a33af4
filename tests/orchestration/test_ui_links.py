"""The MLflow addresses ``make demo`` prints open the experiment's training runs in MLflow 3.17's
model-training view: its UI opens the GenAI overview (Traces 0, Detect Issues) for an experiment link
without ``?workflowType=machine_learning`` whatever the experiment's tags say."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from models.core.settings import Settings
from models.registry import mlflow_client
from orchestration.commands import champion

URI = "http://127.0.0.1:5050"
VIEW = "?workflowType=machine_learning"


@pytest.mark.unit
def test_the_champion_links_open_the_runs_table_in_the_model_training_view() -> None:
    run = SimpleNamespace(info=SimpleNamespace(experiment_id="1", run_id="abc"))
    lines = champion.describe_links(URI, "to-bikes-member", SimpleNamespace(version="3"), run)
    assert lines == [
        f"  run: {URI}/#/experiments/1/runs/abc{VIEW}",
        f"  model version: {URI}/#/models/to-bikes-member/versions/3{VIEW}",
        f"  experiment runs: {URI}/#/experiments/1/runs{VIEW}",
    ]


@pytest.mark.unit
def test_the_printed_mlflow_ui_address_is_the_experiments_runs_table(monkeypatch: pytest.MonkeyPatch) -> None:
    experiments = {"to-bikes": SimpleNamespace(experiment_id="7")}
    client = SimpleNamespace(tracking_uri=URI, get_experiment_by_name=experiments.get)
    monkeypatch.setattr(mlflow_client, "connect_tracking", lambda uri, settings: client)
    settings = Settings(mlflow_tracking_uri=URI)
    assert champion.mlflow_ui_address(settings) == f"{URI}/#/experiments/7/runs{VIEW}"
    experiments.clear()  # no training run yet: the experiments list, still in the model-training view
    assert champion.mlflow_ui_address(settings) == f"{URI}/#/experiments{VIEW}"
