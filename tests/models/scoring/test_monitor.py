"""Scoring a period and monitoring it: reference sample, real performance, Evidently drift, the verdict."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.core import storage
from models.core.names import MONITORING_EXPERIMENT
from models.core.settings import load_settings
from models.data.features import FEATURE_COLUMNS
from models.scoring.history import read_history
from models.scoring.monitor import BREACH, OK, SUMMARY_FILE, decide, monitor_period, report_uri
from models.scoring.reference import load_reference
from models.scoring.score import PREDICTION_COLUMNS, predictions_uri, processed_uri, score_period
from models.training.dataset import select_features
from tests.models.training.trips import build_trips, train_champion, write_trips

NAME = "monitor-test"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A registry whose champion was trained on June-August (validated on August)."""
    return train_champion(tmp_path_factory, NAME)


def shift_month(frame: pd.DataFrame) -> pd.DataFrame:
    """A month like the 2023 label collapse: labels flipped, longer trips at other hours."""
    flipped = np.where(frame["user_type"] == "member", "casual", "member")
    return frame.assign(
        user_type=flipped,
        duration_s=frame["duration_s"] * 3,
        hour=(frame["hour"] + 9) % 24,
        round_trip=1 - frame["round_trip"],
        start_station_id=frame["start_station_id"] + 1000,
        end_station_id=frame["end_station_id"] + 1000,
    )


@pytest.mark.unit
def test_verdict_breaches_on_an_auc_drop_or_on_drift_only_beyond_the_thresholds(monkeypatch):
    monkeypatch.setenv("TO_BIKES_MONITOR_MAX_AUC_DROP", "0.05")
    monkeypatch.setenv("TO_BIKES_MONITOR_MAX_DRIFT_SHARE", "0.5")
    settings = load_settings()
    assert decide({"roc_auc": 0.93}, 0.97, 0.5, settings) == (OK, [])
    verdict, reasons = decide({"roc_auc": 0.91}, 0.97, 0.1, settings)
    assert verdict == BREACH and "ROC AUC 0.9100" in reasons[0]
    verdict, reasons = decide({"roc_auc": 0.97}, 0.97, 0.6, settings)
    assert verdict == BREACH and "60% of the features drifted" in reasons[0]
    assert decide({"roc_auc": math.nan}, 0.97, 0.0, settings)[0] == BREACH  # one class left: nothing ranks


@pytest.mark.integration
def test_training_run_keeps_a_seeded_reference_sample_with_the_model_scores(trained, tmp_path):
    MlflowClient(trained.uri)  # the store exists
    import mlflow

    mlflow.set_tracking_uri(trained.uri)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(trained.workdir)
        reference = load_reference(trained.run_id, tmp_path)
    assert set(FEATURE_COLUMNS) <= set(reference.columns)
    assert set(reference["user_type"]) == {"member", "casual"}
    assert reference["month"].isin([6, 7]).all()  # training months only, never the validation month
    assert reference["p_member"].between(0, 1).all()
    assert ((reference["p_member"] >= 0.5) == (reference["predicted_user_type"] == "member")).all()
    assert len(select_features(reference)) == len(reference) > 1000


@pytest.mark.integration
@pytest.mark.slow
def test_normal_month_is_ok_and_a_shifted_month_breaches(trained, s3_env, monkeypatch, tmp_path):
    monkeypatch.chdir(trained.workdir)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    monkeypatch.setenv("TO_BIKES_MODEL_NAME", NAME)
    settings = load_settings()
    normal = build_trips(rows=3000, months=("2025-09",), seed=11)
    months = {"2025-09": normal, "2025-10": shift_month(build_trips(rows=3000, months=("2025-10",), seed=12))}
    summaries = {}
    for period, frame in months.items():
        staged = write_trips(tmp_path / f"{period}.parquet", frame)
        storage.write_file_atomic(staged, processed_uri(settings, period), settings)
        scored = score_period(period, settings)
        assert scored.rows == 3000 and scored.model_version == str(trained.version)
        summaries[period] = monitor_period(period, settings)

    local = storage.download_file(predictions_uri(settings, "2025-09"), tmp_path / "p.parquet", settings)
    predictions = pd.read_parquet(local)
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert predictions["trip_id"].tolist() == normal["trip_id"].tolist()
    assert set(predictions["run_id"]) == {trained.run_id}

    ok, breach = summaries["2025-09"], summaries["2025-10"]
    assert ok["verdict"] == OK, ok["reasons"]
    assert ok["metrics"]["roc_auc"] > 0.9 and ok["drift_share"] <= 0.5
    assert breach["verdict"] == BREACH
    assert breach["metrics"]["roc_auc"] < 0.5 and breach["drift_share"] > 0.5
    assert {"duration_s", "hour", "start_station_id"} <= set(breach["drifted"])
    assert breach["metrics"]["member_share_actual"] < 0.35 < ok["metrics"]["member_share_actual"]
    assert abs(ok["metrics"]["member_share_predicted"] - ok["metrics"]["member_share_actual"]) < 0.05

    html = storage.download_file(report_uri(settings, "2025-10"), tmp_path / "r.html", settings)
    assert "root_metric_" in html.read_text() and "duration_s" in html.read_text()
    summary = storage.download_file(
        report_uri(settings, "2025-10", SUMMARY_FILE), tmp_path / "s.json", settings
    )
    assert json.loads(summary.read_text())["verdict"] == BREACH
    assert [row["verdict"] for row in read_history(settings)] == [OK, BREACH]

    client = MlflowClient(trained.uri)
    tags = client.get_model_version(NAME, str(trained.version)).tags
    assert tags["monitoring.2025-09"] == OK and tags["monitoring.2025-10"] == BREACH
    run = client.get_run(breach["monitoring_run_id"])
    assert run.data.tags["model.version"] == str(trained.version) and run.data.tags["verdict"] == BREACH
    experiment = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    assert run.info.experiment_id == experiment.experiment_id
    assert "monitoring.html" in [item.path for item in client.list_artifacts(run.info.run_id)]
