"""Metrics, the search, the tracking helpers and the gate rule: pure functions, no tracking store."""

from __future__ import annotations

import time

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from models.core.errors import UserError
from models.registry.gate import decide_promotion
from models.registry.mlflow_client import (
    check_tracking_uri,
    pinned_requirements,
    read_names,
    read_pins,
    reported_mlflow_errors,
)
from models.training.dataset import select_features
from models.training.estimator import DEFAULT_PARAMS, build_pipeline, search_params
from models.training.metrics import compute_metrics, member_probability
from tests.models.training.trips import build_trips, free_port

LABELS = np.array(["member", "member", "casual", "member", "casual", "casual"])


@pytest.mark.unit
def test_perfect_scores_give_perfect_metrics():
    metrics = compute_metrics(LABELS, np.where(LABELS == "member", 0.99, 0.01))
    assert metrics["roc_auc"] == metrics["pr_auc_casual"] == 1.0
    assert metrics["f1_member"] == metrics["f1_casual"] == metrics["accuracy"] == 1.0
    assert metrics["brier"] == pytest.approx(0.0001)


@pytest.mark.unit
def test_a_constant_score_ranks_nothing():
    metrics = compute_metrics(LABELS, np.full(len(LABELS), 0.7))
    assert metrics["roc_auc"] == 0.5
    assert metrics["f1_casual"] == 0.0  # everyone predicted member
    assert metrics["pr_auc_casual"] == pytest.approx(0.5)  # the casual share


@pytest.mark.unit
def test_one_class_leaves_ranking_metrics_undefined():
    metrics = compute_metrics(np.array(["member"] * 3), np.array([0.2, 0.6, 0.9]))
    assert np.isnan(metrics["roc_auc"]) and np.isnan(metrics["pr_auc_casual"])


@pytest.mark.unit
def test_pipeline_handles_many_and_unseen_stations():
    trips = build_trips(rows=3000)
    model = build_pipeline(DEFAULT_PARAMS, seed=1).fit(select_features(trips), trips["user_type"].to_numpy())
    unseen = select_features(trips.head(5)).assign(start_station_id=99999.0, end_station_id=np.nan)
    p_member = member_probability(model, unseen)
    assert p_member.shape == (5,) and np.isfinite(p_member).all()


@pytest.mark.unit
def test_search_stops_at_max_evals_and_starts_from_the_defaults():
    trips = build_trips(rows=2000)
    x, y = select_features(trips), trips["user_type"].to_numpy()
    found = search_params(x[:1500], y[:1500], x[1500:], y[1500:], max_evals=3, time_budget_s=600, seed=1)
    assert len(found.trials) == 3
    assert {k: found.trials[0][k] for k in DEFAULT_PARAMS} == DEFAULT_PARAMS
    assert found.best_score == max(t["roc_auc"] for t in found.trials)


@pytest.mark.unit
def test_search_respects_its_time_budget_after_the_first_trial():
    trips = build_trips(rows=2000)
    x, y = select_features(trips), trips["user_type"].to_numpy()
    found = search_params(x[:1500], y[:1500], x[1500:], y[1500:], max_evals=50, time_budget_s=1e-9, seed=1)
    assert len(found.trials) == 1


@pytest.mark.unit
def test_requirements_are_pinned_from_the_lock(tmp_path):
    (tmp_path / "base.in").write_text("# runtime\n-c constraints.txt\npandas>=3.1  # why\nscikit_learn>=1.9")
    (tmp_path / "model.txt").write_text(
        "pandas==3.1.1 \\\n    --hash=sha256:00\n    # via -r base.in\nscikit-learn==1.9.1 \\\n"
        "tzdata==2025.2 ; sys_platform == 'win32' \\\nboto3[crt]>=1.43\n"
    )
    assert read_names(tmp_path / "base.in") == ["pandas", "scikit-learn"]
    pins = {"pandas": "3.1.1", "scikit-learn": "1.9.1", "tzdata": "2025.2"}  # not boto3: no exact pin
    assert read_pins(tmp_path / "model.txt") == pins
    pins = pinned_requirements(tmp_path)
    assert pins[:2] == ["pandas==3.1.1", "scikit-learn==1.9.1"]
    assert {p.split("==")[0] for p in pins[2:]} == {"numpy", "skops"}  # installed versions
    assert all("==" in p for p in pinned_requirements())


@pytest.mark.unit
def test_unreachable_server_is_named_without_its_password():
    uri = f"http://alice:pw123@127.0.0.1:{free_port()}"
    with pytest.raises(UserError, match=r"127\.0\.0\.1") as caught:
        check_tracking_uri(uri)
    assert "pw123" not in str(caught.value)
    check_tracking_uri("sqlite:///anything.db")  # not a server: nothing to probe


BASE = {"roc_auc": 0.80, "baseline_roc_auc": 0.5, "champion_roc_auc": 0.78}


@pytest.mark.unit
def test_gate_keeps_a_version_that_is_already_champion():
    decision = decide_promotion(BASE, {"champion.version": "none"}, "5", "5", margin=0.002)
    # Kept, not promoted: nothing moves, and a rerun must not read as a promotion (issue 28).
    assert (decision.promote, decision.verdict) == (False, "already-champion")
    assert "already champion" in decision.reason


@pytest.mark.unit
def test_mlflow_failures_become_one_sentence(monkeypatch):
    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: "https://u:topsecret@mlflow.example.invalid")
    with pytest.raises(UserError) as caught, reported_mlflow_errors("registering"):
        raise MlflowException("API request failed\nTraceback (most recent call last): ...")
    message = str(caught.value)
    assert message.startswith("MLflow at https://u:***@mlflow.example.invalid failed while registering")
    assert "\n" not in message and "topsecret" not in message


@pytest.mark.unit
def test_a_tracking_server_that_comes_back_within_the_wait_is_connected_to():
    """A restarting MLflow server (the soak's mlflow-outage) does not fail a run that waits for it."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    with pytest.raises(UserError, match="unreachable"):
        check_tracking_uri(uri)  # no wait: one sentence at once, as a command fails
    servers: list[HTTPServer] = []

    def start_later() -> None:
        time.sleep(3)
        servers.append(HTTPServer(("127.0.0.1", port), Health))
        servers[0].serve_forever()

    threading.Thread(target=start_later, daemon=True).start()
    try:
        check_tracking_uri(uri, wait_s=60)
    finally:
        while not servers:
            time.sleep(0.1)
        servers[0].shutdown()
        servers[0].server_close()
