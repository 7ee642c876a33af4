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
from models.registry.gate import Window
from models.scoring.history import describe_summary, read_history
from models.scoring.monitor import (
    BREACH,
    IN_SAMPLE,
    OK,
    SUMMARY_FILE,
    decide,
    monitor_period,
    report_uri,
)
from models.scoring.monitoring_runs import find_monitoring
from models.scoring.reference import load_reference
from models.scoring.score import PREDICTION_COLUMNS, predictions_uri, processed_uri, score_period
from models.scoring.window import OUT_OF_SAMPLE, UNKNOWN, VALIDATION, classify_period
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
    assert verdict == BREACH and reasons == ["60% of the judged features drifted (limit 50%)"]
    assert decide({"roc_auc": math.nan}, 0.97, 0.0, settings)[0] == BREACH  # one class left: nothing ranks


@pytest.mark.unit
def test_a_month_the_champion_trained_on_is_in_sample_and_never_an_auc_breach(monkeypatch):
    monkeypatch.setenv("TO_BIKES_MONITOR_MAX_AUC_DROP", "0.05")
    monkeypatch.setenv("TO_BIKES_MONITOR_MAX_DRIFT_SHARE", "0.5")
    settings = load_settings()
    window = Window(("2025-01", "2025-02", "2025-03"), "2025-04")
    inside = classify_period("2025-02", window, "1")
    assert inside.kind == IN_SAMPLE and "trained on 2025-02 (training window 2025-01..2025-03)" in inside.note
    assert classify_period("2025", window, "1").kind == IN_SAMPLE  # a year holding trained months
    assert classify_period("2025-04", window, "1").kind == VALIDATION
    assert classify_period("2025-05", window, "1").kind == OUT_OF_SAMPLE
    assert classify_period("2025-05", Window((), "2025-04"), "1").kind == UNKNOWN
    # A collapsed AUC on a trained month is no breach; its drift is still said.
    verdict, reasons = decide({"roc_auc": 0.5}, 0.97, 0.6, settings, inside)
    assert verdict == IN_SAMPLE and reasons == [inside.note, "60% of the judged features drifted (limit 50%)"]
    outside = classify_period("2025-05", window, "1")
    assert decide({"roc_auc": 0.5}, 0.97, 0.0, settings, outside)[0] == BREACH


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
    assert reference["month"].eq(8).all()  # the held-out validation month, never a training month
    assert MlflowClient(trained.uri).get_run(trained.run_id).data.tags["reference.month"] == "2025-08"
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
    months = {
        "2025-07": shift_month(build_trips(rows=3000, months=("2025-07",), seed=13)),  # trained on
        "2025-09": normal,
        "2025-10": shift_month(build_trips(rows=3000, months=("2025-10",), seed=12)),
    }
    summaries = {}
    for period, frame in months.items():
        staged = write_trips(tmp_path / f"{period}.parquet", frame)
        storage.write_file_atomic(staged, processed_uri(settings, period), settings)
        scored = score_period(period, settings)
        assert scored.rows == 3000 and scored.model_version == str(trained.version)
        summaries[period] = monitor_period(period, settings, data_checksum=f"sum-{period}")

    local = storage.download_file(predictions_uri(settings, "2025-09"), tmp_path / "p.parquet", settings)
    predictions = pd.read_parquet(local)
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert predictions["trip_id"].tolist() == normal["trip_id"].tolist()
    assert set(predictions["run_id"]) == {trained.run_id}

    ok, breach, inside = summaries["2025-09"], summaries["2025-10"], summaries["2025-07"]
    assert (inside["verdict"], inside["sample"]) == (IN_SAMPLE, "in-sample")  # never a breach of AUC
    assert inside["metrics"]["roc_auc"] < 0.5 and inside["drift_share"] > 0.5  # still measured, shown
    assert "trained on 2025-07" in inside["reasons"][0] and "judged features drifted" in inside["reasons"][1]
    assert (ok["sample"], breach["sample"]) == ("out-of-sample", "out-of-sample")
    assert ok["reference"].startswith("2025-08 (the champion's validation month, held out")
    lines = describe_summary(inside, predictions_uri(settings, "2025-07"))
    assert any(line.startswith("verdict: IN-SAMPLE (version ") for line in lines), lines
    assert ok["verdict"] == OK, ok["reasons"]
    assert ok["metrics"]["roc_auc"] > 0.9 and ok["drift_share"] <= 0.5
    assert breach["verdict"] == BREACH
    assert breach["metrics"]["roc_auc"] < 0.5 and breach["drift_share"] > 0.5
    assert {"duration_s", "hour"} <= set(breach["drifted"]) <= set(breach["drift_judged"])
    # Some 950 stations (shifted ones too) on a reference of 1,331 trips: too few to judge their shares.
    assert breach["drift_not_judged"]["start_station_id"].startswith("too few trips: ")
    assert breach["drift_not_judged"]["month"] == "calendar: fixed by the period"
    assert breach["metrics"]["member_share_actual"] < 0.35 < ok["metrics"]["member_share_actual"]
    assert abs(ok["metrics"]["member_share_predicted"] - ok["metrics"]["member_share_actual"]) < 0.05

    html = storage.download_file(report_uri(settings, "2025-10"), tmp_path / "r.html", settings)
    assert "root_metric_" in html.read_text() and "duration_s" in html.read_text()
    summary = storage.download_file(
        report_uri(settings, "2025-10", SUMMARY_FILE), tmp_path / "s.json", settings
    )
    assert json.loads(summary.read_text())["verdict"] == BREACH
    rows = read_history(settings)
    assert [(row["period"], row["verdict"], row["sample"]) for row in rows] == [
        ("2025-07", IN_SAMPLE, "in-sample"),
        ("2025-09", OK, "out-of-sample"),
        ("2025-10", BREACH, "out-of-sample"),
    ]

    client = MlflowClient(trained.uri)
    tags = client.get_model_version(NAME, str(trained.version)).tags
    assert tags["monitoring.2025-09"] == OK and tags["monitoring.2025-10"] == BREACH
    # The same month, version and data is found again (the score flow then does not monitor it twice).
    found = find_monitoring("2025-09", str(trained.version), "sum-2025-09", settings)
    assert found["monitoring_run_id"] == ok["monitoring_run_id"] and found["verdict"] == OK
    assert found["monitoring_run_url"] == ok["monitoring_run_url"] and found["flow_run"] == "none"
    assert find_monitoring("2025-09", str(trained.version), "changed", settings) is None  # other data
    assert find_monitoring("2025-09", "99", "sum-2025-09", settings) is None  # another version
    assert find_monitoring("2025-11", str(trained.version), "sum-2025-09", settings) is None
    run = client.get_run(breach["monitoring_run_id"])
    assert run.data.tags["model.version"] == str(trained.version) and run.data.tags["verdict"] == BREACH
    experiment = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    assert run.info.experiment_id == experiment.experiment_id
    assert "monitoring.html" in [item.path for item in client.list_artifacts(run.info.run_id)]
