"""Training end to end against a local SQLite tracking store: metrics, lineage, artefacts, CLI.

One module-scoped run (on the synthetic trips of ``tests/models/training/trips.py``) is inspected from several
angles; the CLI tests train again through ``main`` as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.cli import main
from models.core import storage
from models.data.features import FEATURE_COLUMNS
from models.data.preprocess import preprocess
from models.registry.mlflow_client import load_sklearn_model, pinned_requirements
from models.sample.generate import generate_sample
from models.training.inputs import select_training_inputs
from models.training.train import train_model
from tests.models.training.trips import build_trips, free_port, make_tracking_uri, write_trips

SECRET = "do-not-log-this-secret-0123456789"
METRIC_NAMES = {"roc_auc", "pr_auc_casual", "f1_member", "f1_casual", "accuracy", "log_loss", "brier"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One training run under a fake Prefect environment, with a secret in the environment."""
    workdir = tmp_path_factory.mktemp("train")
    uri = make_tracking_uri(tmp_path_factory, workdir)
    features = write_trips(workdir / "trips.parquet", build_trips(rows=8000))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.setenv("TO_BIKES_GIT_COMMIT", "0123abc")
        patch.setenv("PREFECT__FLOW_RUN_ID", "flow-run-42")
        patch.setenv("TO_BIKES_DEPLOYMENT", "train-flow/nightly")
        patch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        result = train_model(features, tracking_uri=uri, experiment="t", model_name="m-train", max_evals=2)
    run = MlflowClient(uri).get_run(result.run_id)
    return SimpleNamespace(result=result, run=run, uri=uri, features=features, workdir=workdir)


@pytest.mark.integration
def test_model_beats_the_baseline_on_the_latest_month(trained):
    result = trained.result
    assert set(result.metrics) == METRIC_NAMES == set(result.baseline_metrics)
    assert result.valid_month == "2025-08"
    assert result.baseline_metrics["roc_auc"] == pytest.approx(0.5)
    assert result.metrics["roc_auc"] > result.baseline_metrics["roc_auc"] + 0.2
    assert result.metrics["log_loss"] < result.baseline_metrics["log_loss"]
    assert result.champion_metrics is None


@pytest.mark.integration
def test_run_carries_lineage_tags_and_no_secret(trained):
    tags = trained.run.data.tags
    assert tags["git.commit"] == "0123abc"
    assert tags["git.dirty"] == "unknown"
    assert tags["data.digest"] == storage.file_digest(trained.features)
    assert tags["prefect.flow_run_id"] == "flow-run-42"
    assert tags["prefect.deployment"] == "train-flow/nightly"
    assert "command" in tags
    assert tags["validation.month"] == "2025-08"
    everything = json.dumps([trained.run.data.tags, trained.run.data.params])
    assert SECRET not in everything


@pytest.mark.integration
def test_run_logs_params_baseline_metrics_dataset_and_plots(trained):
    run, client = trained.run, MlflowClient(trained.uri)
    assert int(run.data.params["n_train"]) + int(run.data.params["n_valid"]) == 8000
    assert run.data.params["seed"] == "7"
    assert {f"baseline_{name}" for name in METRIC_NAMES} <= set(run.data.metrics)
    (dataset_input,) = run.inputs.dataset_inputs
    digest = trained.run.data.tags["data.digest"].removeprefix("sha256:")
    assert digest.startswith(dataset_input.dataset.digest)
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    expected = {"confusion_matrix", "roc", "precision_recall", "calibration", "feature_importance"}
    assert plots == {f"plots/{name}.png" for name in expected}


@pytest.mark.integration
def test_logged_model_has_signature_example_and_pinned_requirements(trained):
    model_uri = trained.run.data.tags["model.uri"]
    info = mlflow.models.get_model_info(model_uri)
    assert info.signature.inputs.input_names() == FEATURE_COLUMNS
    assert info.saved_input_example_info is not None
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, tracking_uri=trained.uri))
    text = (local / "requirements.txt").read_text().splitlines()
    lines = [line.strip() for line in text if line.strip() and not line.startswith("#")]
    assert lines == pinned_requirements()
    assert any(line.startswith("scikit-learn==") for line in lines)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The generated synthetic sample (all six eras), preprocessed for 2025, trained on."""
    workdir = tmp_path_factory.mktemp("sample")
    generate_sample(workdir / "raw", seed=7, rows=20_000)
    features = str(workdir / "2025" / "trips.parquet")
    preprocess(str(workdir / "raw"), features, period="2025")
    uri = make_tracking_uri(tmp_path_factory, workdir)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        result = train_model(
            features, tracking_uri=uri, experiment="sample", model_name="m-sample", max_evals=2
        )
    run = MlflowClient(uri).get_run(result.run_id)
    return SimpleNamespace(result=result, run=run, features=features)


@pytest.mark.integration
def test_on_the_generated_sample_the_model_clearly_beats_the_baseline(sample_run):
    result = sample_run.result
    assert result.valid_month == "2025-12"
    assert result.metrics["roc_auc"] > result.baseline_metrics["roc_auc"] + 0.25
    assert result.metrics["pr_auc_casual"] > 2 * result.baseline_metrics["pr_auc_casual"]
    assert result.metrics["brier"] < result.baseline_metrics["brier"]


@pytest.mark.integration
def test_commute_is_more_member_than_a_long_sunday_round_trip(sample_run):
    trips = pd.read_parquet(sample_run.features)
    busiest, second = trips["start_station_id"].value_counts().index[:2]
    model = load_sklearn_model(sample_run.run.data.tags["model.uri"])
    journeys = pd.DataFrame(
        [
            # Tuesday 8 am, 12 minutes, between the two busiest stations.
            {"hour": 8, "weekday": 1, "month": 6, "is_weekend": 0, "is_holiday": 0, "duration_s": 720,
             "round_trip": 0, "start_station_id": busiest, "end_station_id": second},
            # Sunday 2 pm, three hours, back to the same (busiest) station.
            {"hour": 14, "weekday": 6, "month": 6, "is_weekend": 1, "is_holiday": 0, "duration_s": 10800,
             "round_trip": 1, "start_station_id": busiest, "end_station_id": busiest},
        ]
    )[FEATURE_COLUMNS].astype("float64")  # fmt: skip
    commute, sunday = model.predict_proba(journeys)[:, list(model.classes_).index("member")]
    assert commute > 0.5 > sunday


@pytest.mark.integration
def test_cli_prints_a_json_summary_last(tmp_path_factory, tmp_path, monkeypatch, capsys):
    uri = make_tracking_uri(tmp_path_factory, tmp_path)
    features = write_trips(tmp_path / "trips.parquet", build_trips(rows=3000, seed=11))
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--input", features, "--tracking-uri", uri, "--max-evals", "1", "--seed", "5"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"run_id", "metrics", "baseline_metrics", "champion_metrics"} <= set(summary)
    assert summary["metrics"]["roc_auc"] > summary["baseline_metrics"]["roc_auc"]
    assert MlflowClient(uri).get_run(summary["run_id"]).data.params["seed"] == "5"


@pytest.mark.unit
def test_cli_names_a_missing_input_and_exits_2(tmp_path, capsys):
    missing = tmp_path / "absent.parquet"
    assert main(["train", "--input", str(missing), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err
    assert len(err.splitlines()) == 1


@pytest.mark.unit
def test_cli_names_an_unreachable_tracking_server_and_exits_2(tmp_path, capsys):
    features = write_trips(tmp_path / "trips.parquet", build_trips(rows=500))
    uri = f"http://user:hunter2@127.0.0.1:{free_port()}"
    assert main(["train", "--input", features, "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert "127.0.0.1" in err and "unreachable" in err
    assert "hunter2" not in err
    assert len(err.splitlines()) == 1


@pytest.mark.integration
def test_cli_refuses_a_single_month_and_exits_2(tmp_path_factory, tmp_path, monkeypatch, capsys):
    uri = make_tracking_uri(tmp_path_factory, tmp_path)
    features = write_trips(tmp_path / "july.parquet", build_trips(rows=500, months=("2025-07",)))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--input", features, "--tracking-uri", uri]) == 2
    assert "only one month" in capsys.readouterr().err


@pytest.mark.integration
def test_trains_from_s3_and_records_the_object_digest(s3_env, tmp_path_factory, tmp_path, monkeypatch):
    uri = make_tracking_uri(tmp_path_factory, tmp_path)
    local = write_trips(tmp_path / "trips.parquet", build_trips(rows=3000, seed=9))
    source = f"s3://{s3_env.bucket}/processed/2025/trips.parquet"
    storage.write_file_atomic(local, source, s3_env.settings())
    monkeypatch.chdir(tmp_path)
    result = train_model(source, tracking_uri=uri, model_name="m-s3", max_evals=1)
    run = MlflowClient(uri).get_run(result.run_id)
    assert run.data.tags["data.digest"] == storage.file_digest(local)
    assert run.data.params["input"] == source
    assert source in run.inputs.dataset_inputs[0].dataset.source


@pytest.mark.integration
def test_cli_trains_on_two_monthly_files_and_logs_both(tmp_path_factory, tmp_path, monkeypatch, capsys):
    uri = make_tracking_uri(tmp_path_factory, tmp_path)
    july = write_trips(tmp_path / "july.parquet", build_trips(rows=2500, months=("2025-07",), seed=3))
    august = write_trips(tmp_path / "august.parquet", build_trips(rows=1500, months=("2025-08",), seed=4))
    monkeypatch.chdir(tmp_path)
    args = ["--input", july, "--input", august, "--tracking-uri", uri, "--max-evals", "1"]
    assert main(["train", *args]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["valid_month"] == "2025-08" and summary["inputs"] == [july, august]
    run = MlflowClient(uri).get_run(summary["run_id"])
    assert (run.data.params["n_train"], run.data.params["n_valid"]) == ("2500", "1500")
    assert run.data.params["input"] == f"{july},{august}" and run.data.params["n_inputs"] == "2"
    digests = [storage.file_digest(july), storage.file_digest(august)]
    assert run.data.tags["data.digest"] not in digests
    logged = {d.dataset.digest: d.dataset.source for d in run.inputs.dataset_inputs}
    assert len(run.inputs.dataset_inputs) == len(logged) == 2
    for path, digest in zip([july, august], digests, strict=True):
        assert str(Path(path).resolve()) in logged[digest.removeprefix("sha256:")[:32]]
    recorded = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/inputs.json")["inputs"]
    assert [(i["uri"], i["digest"], i["rows"], i["months"]) for i in recorded] == [
        (july, digests[0], 2500, ["2025-07"]),
        (august, digests[1], 1500, ["2025-08"]),
    ]


@pytest.mark.integration
def test_a_monthly_run_trains_on_the_months_selected_on_s3(s3_env, tmp_path_factory, tmp_path, monkeypatch):
    """What the pipeline does for 2025-08: select the processed outputs on S3, train on all of them."""
    settings = (s3_env | {"TO_BIKES_PROCESSED_PREFIX": f"monthly-{tmp_path.name}/processed"}).settings()
    for month, rows, seed in (("2025-06", 1500, 5), ("2025-07", 1500, 6), ("2025-08", 1000, 7)):
        local = write_trips(tmp_path / f"{month}.parquet", build_trips(rows=rows, months=(month,), seed=seed))
        dest = settings.s3_uri(settings.processed_prefix, month, "trips.parquet")
        storage.write_file_atomic(local, dest, settings)
    inputs = select_training_inputs(settings, "2025-08")
    assert [uri.split("/")[-2] for uri in inputs] == ["2025-06", "2025-07", "2025-08"]
    uri = make_tracking_uri(tmp_path_factory, tmp_path)
    monkeypatch.chdir(tmp_path)
    result = train_model(inputs, tracking_uri=uri, model_name="m-monthly", max_evals=1, settings=settings)
    assert result.valid_month == "2025-08" and result.inputs == inputs
    run = MlflowClient(uri).get_run(result.run_id)
    assert (run.data.params["n_train"], run.data.params["n_valid"]) == ("3000", "1000")
    assert run.data.params["input"] == ",".join(inputs)
    assert len(run.inputs.dataset_inputs) == 3


@pytest.mark.integration
def test_overlapping_inputs_are_refused_before_any_run(tmp_path_factory, tmp_path, monkeypatch, capsys):
    uri = make_tracking_uri(tmp_path_factory, tmp_path)
    year = write_trips(tmp_path / "2025.parquet", build_trips(rows=2000, seed=8))
    august = write_trips(tmp_path / "2025-08.parquet", build_trips(rows=500, months=("2025-08",), seed=9))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--input", year, "--input", august, "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert "both hold trips of 2025-08" in err and len(err.splitlines()) == 1
    client = MlflowClient(uri)
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []
