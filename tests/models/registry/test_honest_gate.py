"""The honest gate against a real MLflow server, with processed outputs on the stack's S3.

Two scenarios, each under its own processed prefix and registered model:
- the issue's: a champion trained by a yearly run on January to November 2025, then a month run for
  2025-03 after a backfill of 2025-01..03. The champion trained on March, so the gate never compares
  there: with the yearly output on S3 it compares on 2025-12 (after both training windows), and
  without it there is no honest month, so the champion stays and the decision says why.
- a forward sequence: January, February, March month models, each validated on its own month, which
  the champion never saw; a better newer model is promoted.
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from mlflow import MlflowClient

from models.core import storage
from models.core.periods import month_range, parse_month_ranges
from models.core.s3 import s3_client, split_s3_uri
from models.core.settings import Settings
from models.registry.register import register_model
from models.training.inputs import OUTPUT_NAME, select_training_inputs
from models.training.train import train_model
from stack.embedded import StackEnv
from tests.models.training.trips import build_trips, write_trips

MARGIN = 0.002


def put_period(settings: Settings, workdir, period: str, trips: pd.DataFrame) -> str:
    """Write trips as ``processed/<period>/trips.parquet`` on S3 (what preprocessing writes)."""
    local = write_trips(workdir / f"{period}.parquet", trips)
    dest = settings.s3_uri(settings.processed_prefix, period, OUTPUT_NAME)
    storage.write_file_atomic(local, dest, settings)
    return local


def train_and_register(settings: Settings, uri: str, period: str, name: str) -> SimpleNamespace:
    """What the pipeline does for a period: select its inputs on S3, train, register through the gate."""
    inputs = select_training_inputs(settings, period)
    trained = train_model(
        inputs, tracking_uri=uri, experiment="honest", model_name=name, max_evals=1, settings=settings
    )
    registered = register_model(trained.run_id, name=name, margin=MARGIN, tracking_uri=uri)
    run = MlflowClient(uri).get_run(trained.run_id)
    return SimpleNamespace(trained=trained, registered=registered, run=run)


def stack_settings(server: StackEnv, prefix: str) -> Settings:
    return (server | {"TO_BIKES_PROCESSED_PREFIX": f"{prefix}/processed"}).settings()


@pytest.fixture(scope="module")
def issue_scenario(mlflow_server: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Yearly champion; backfill 2025-01..03; March run without, then with, the yearly output on S3."""
    uri, name = mlflow_server["MLFLOW_TRACKING_URI"], "issue-gate"
    settings = stack_settings(mlflow_server, "issue")
    workdir = tmp_path_factory.mktemp("issue")
    months = tuple(month_range("2025-01", "2025-12"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        yearly_file = put_period(settings, workdir, "2025", build_trips(rows=4800, months=months, seed=31))
        yearly = train_and_register(settings, uri, "2025", name)
        for month, seed in (("2025-01", 32), ("2025-02", 33), ("2025-03", 34)):
            put_period(settings, workdir, month, build_trips(rows=700, months=(month,), seed=seed))
        bucket, key = split_s3_uri(settings.s3_uri(settings.processed_prefix, "2025", OUTPUT_NAME))
        s3_client(settings).delete_object(Bucket=bucket, Key=key)
        unseen_gone = train_and_register(settings, uri, "2025-03", name)
        storage.write_file_atomic(yearly_file, f"s3://{bucket}/{key}", settings)
        march = train_and_register(settings, uri, "2025-03", name)
    return SimpleNamespace(uri=uri, name=name, yearly=yearly, unseen_gone=unseen_gone, march=march)


@pytest.mark.integration
def test_every_run_and_version_records_its_training_and_validation_months(issue_scenario):
    yearly, march = issue_scenario.yearly, issue_scenario.march
    assert yearly.run.data.tags["data.train_months"] == "2025-01..2025-11"
    assert yearly.run.data.params["data.valid_month"] == "2025-12"
    assert march.run.data.tags["data.train_months"] == "2025-01..2025-02"
    version = MlflowClient(issue_scenario.uri).get_model_version(
        issue_scenario.name, march.registered.version
    )
    assert (version.tags["data.train_months"], version.tags["data.valid_month"]) == (
        "2025-01..2025-02",
        "2025-03",
    )
    assert (yearly.run.info.run_name, march.run.info.run_name) == ("2025 hgb", "2025-03 hgb")
    assert march.run.data.tags["mlflow.source.name"] == "models.training.train"
    experiment = MlflowClient(issue_scenario.uri).get_experiment(march.run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # not the GenAI view


@pytest.mark.integration
def test_without_a_month_neither_trained_on_the_champion_stays_and_the_decision_says_why(issue_scenario):
    gone = issue_scenario.unseen_gone
    assert gone.trained.champion_version == "1" and gone.trained.compared_on is None
    assert gone.trained.champion_metrics is None  # never scored on March, which it trained on
    assert (gone.registered.promoted, gone.registered.champion_version) == (False, "1")
    assert gone.registered.reason == (
        "No honest comparison: champion version 1 trained on 2025-03 and no processed month after both "
        "training windows (after 2025-11) exists, so champion version 1 stays."
    )
    assert gone.run.data.tags["gate.compared_on"] == "none"
    assert gone.run.data.tags["gate.reason"] == gone.registered.reason
    assert not any(key.startswith(("champion_", "gate_")) for key in gone.run.data.metrics)


@pytest.mark.integration
def test_the_march_run_is_compared_on_a_month_neither_model_trained_on(issue_scenario):
    yearly, march = issue_scenario.yearly, issue_scenario.march
    compared = march.registered.compared_on
    trained_on = parse_month_ranges(yearly.run.data.tags["data.train_months"])
    trained_on += parse_month_ranges(march.run.data.tags["data.train_months"])
    assert compared == "2025-12" and compared not in trained_on and compared != "2025-03"
    # The champion scored on December is the yearly run's own validation score: same model, same trips.
    assert march.registered.champion_score == pytest.approx(yearly.trained.metrics["roc_auc"])
    assert march.run.data.metrics["gate_champion_roc_auc"] == pytest.approx(yearly.trained.metrics["roc_auc"])
    challenger, champion = march.registered.challenger_score, march.registered.champion_score
    assert march.registered.promoted == (challenger > champion + MARGIN)
    assert "2025-12" in march.registered.reason and march.run.data.tags["gate.compared_on"] == "2025-12"


@pytest.fixture(scope="module")
def forward(mlflow_server: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimpleNamespace]:
    """December 2024 (few trips), then January, February and March 2025, one month run each."""
    uri = mlflow_server["MLFLOW_TRACKING_URI"]
    settings = stack_settings(mlflow_server, "forward")
    workdir = tmp_path_factory.mktemp("forward")
    sizes = {"2024-12": 150, "2025-01": 3000, "2025-02": 1500, "2025-03": 1500}
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        for seed, (month, rows) in enumerate(sizes.items(), start=51):
            put_period(settings, workdir, month, build_trips(rows=rows, months=(month,), seed=seed))
            if month != "2024-12":
                runs[month] = train_and_register(settings, uri, month, "forward-gate")
    return runs


@pytest.mark.integration
def test_a_forward_sequence_compares_each_model_on_its_own_unseen_month(forward):
    first, second, third = forward["2025-01"], forward["2025-02"], forward["2025-03"]
    assert (first.registered.version, first.registered.promoted, first.registered.compared_on) == (
        "1",
        True,
        "2025-01",
    )
    assert "No champion yet" in first.registered.reason
    assert second.run.data.tags["data.train_months"] == "2024-12..2025-01"
    assert (second.registered.compared_on, third.registered.compared_on) == ("2025-02", "2025-03")
    for step in (second, third):
        registered = step.registered
        assert registered.promoted == (registered.challenger_score > registered.champion_score + MARGIN)
        assert registered.challenger_score == pytest.approx(step.trained.metrics["roc_auc"])


@pytest.mark.integration
def test_a_better_model_on_an_unseen_month_is_promoted(forward):
    second = forward["2025-02"].registered  # trained on 3,150 trips against the champion's 150
    assert (second.version, second.promoted, second.champion_version, second.decision) == (
        "2",
        True,
        "2",
        "promoted",
    )
    assert second.reason.startswith("roc_auc ") and "beats champion version 1's" in second.reason
    assert second.reason.endswith("on 2025-02.")
