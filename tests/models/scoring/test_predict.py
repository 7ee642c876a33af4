"""Batch scoring with the registered champion: by alias, through the CLI, as a pyfunc, and on S3."""

from __future__ import annotations

import json
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

from models.cli import main
from models.core import storage
from models.core.errors import UserError
from models.core.settings import load_settings
from models.data.features import FEATURE_COLUMNS
from models.registry.mlflow_client import allow_model_loading
from models.scoring.predict import period_end_key, predict
from models.training.dataset import select_features
from tests.models.training.trips import build_trips, train_champion, write_trips

NAME = "predict-test"


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A store whose registry has a champion, and a features file to score."""
    return train_champion(tmp_path_factory, NAME)


@pytest.mark.integration
def test_champion_loads_by_alias_and_scores_every_row(champion, tmp_path):
    output = tmp_path / "out" / "pred.parquet"
    summary = predict(champion.features, str(output), f"models:/{NAME}@champion", tracking_uri=champion.uri)
    scored, trips = pd.read_parquet(output), pd.read_parquet(champion.features)
    assert summary["rows"] == len(scored) == len(trips)
    assert summary["model_uri"] == f"models:/{NAME}/1"
    assert list(scored.columns) == ["trip_id", "start_time", "user_type", "p_member", "predicted_user_type"]
    assert scored["trip_id"].tolist() == trips["trip_id"].tolist()
    assert scored["p_member"].between(0, 1).all()
    assert ((scored["p_member"] >= 0.5) == (scored["predicted_user_type"] == "member")).all()
    assert (scored["predicted_user_type"] == scored["user_type"]).mean() > 0.85


@pytest.mark.integration
def test_cli_defaults_to_the_settings_model_champion(champion, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TO_BIKES_MODEL_NAME", NAME)
    output = tmp_path / "pred.parquet"
    argv = ["--input", champion.features, "--output", str(output), "--tracking-uri", champion.uri]
    assert main(["predict", *argv]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model_version"] == "1"
    assert len(pd.read_parquet(output)) == summary["rows"] == 4000


@pytest.mark.integration
def test_champion_also_works_as_a_generic_pyfunc(champion):
    mlflow.set_tracking_uri(champion.uri)
    trips = pd.read_parquet(champion.features).head(20)
    with allow_model_loading():
        model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    probabilities = np.asarray(model.predict(select_features(trips)))  # the pyfunc answers predict_proba
    assert probabilities.shape == (20, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


@pytest.mark.integration
def test_missing_alias_is_a_one_sentence_error(champion, tmp_path, capsys):
    argv = [
        "--input",
        champion.features,
        "--output",
        str(tmp_path / "p.parquet"),
        "--tracking-uri",
        champion.uri,
    ]
    assert main(["predict", *argv, "--model", f"models:/{NAME}@nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"models:/{NAME}@nonexistent" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "p.parquet").exists()


@pytest.mark.integration
def test_input_without_feature_columns_is_refused(champion, tmp_path):
    broken = write_trips(tmp_path / "broken.parquet", build_trips(rows=50).drop(columns=["duration_s"]))
    with pytest.raises(UserError, match="duration_s"):
        predict(broken, str(tmp_path / "p.parquet"), f"models:/{NAME}@champion", tracking_uri=champion.uri)


@pytest.mark.integration
def test_scores_from_and_to_s3(champion, s3_env, tmp_path):
    source = f"s3://{s3_env.bucket}/processed/test/trips.parquet"
    target = f"s3://{s3_env.bucket}/predictions/test/pred.parquet"
    storage.write_file_atomic(champion.features, source, s3_env.settings())
    summary = predict(source, target, f"models:/{NAME}@champion", tracking_uri=champion.uri)
    local = storage.download_file(target, tmp_path / "pred.parquet", s3_env.settings())
    scored = pd.read_parquet(local)
    assert summary["rows"] == len(scored) == 4000
    assert set(FEATURE_COLUMNS).isdisjoint(scored.columns)


@pytest.mark.unit
def test_the_latest_period_is_the_one_ending_last_a_year_before_its_months() -> None:
    periods = ["2024", "2025-03", "2025-01", "2024-12"]
    assert max(periods, key=period_end_key) == "2025-03"
    assert max([*periods, "2025"], key=period_end_key) == "2025"
    assert max(["2025-12", "2025"], key=period_end_key) == "2025"


@pytest.mark.integration
def test_no_arguments_score_the_latest_processed_period_on_s3_into_data_predictions(
    champion, s3_env, tmp_path, monkeypatch, capsys
):
    bucket = "predict-defaults"
    s3_env.s3_client().create_bucket(Bucket=bucket)
    monkeypatch.setenv("TO_BIKES_BUCKET", bucket)
    monkeypatch.setenv("TO_BIKES_MODEL_NAME", NAME)
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    for period in ("2024", "2025-02", "2025-03"):
        storage.write_file_atomic(
            champion.features, f"s3://{bucket}/processed/{period}/trips.parquet", settings
        )
    assert main(["predict", "--tracking-uri", champion.uri]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0] == (
        f"scoring s3://{bucket}/processed/2025-03/trips.parquet with models:/{NAME}@champion "
        "-> data/predictions/2025-03.parquet"
    )
    summary = json.loads(lines[-1])
    assert summary["output"] == "data/predictions/2025-03.parquet"
    assert len(pd.read_parquet(tmp_path / "data" / "predictions" / "2025-03.parquet")) == summary["rows"]
    assert "Traceback" not in err
    assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is False  # MLflow's download bars are off


@pytest.mark.integration
def test_no_processed_period_is_a_one_sentence_error(s3_env, monkeypatch, capsys):
    bucket = "predict-empty"
    s3_env.s3_client().create_bucket(Bucket=bucket)
    monkeypatch.setenv("TO_BIKES_BUCKET", bucket)
    assert main(["predict"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: No processed period under s3://{bucket}/processed/; run the pipeline first "
        "(make run or make demo), or give PREDICT_INPUT."
    )
