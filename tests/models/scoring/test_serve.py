"""``make serve``: MLflow's server gives the batch scorer's probabilities and a 4xx for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pandas as pd
import pytest

from models.cli import main
from models.registry.mlflow_client import load_sklearn_model
from models.registry.register import register_model
from models.scoring.predict import score_trips
from models.training.dataset import select_features
from models.training.train import train_model
from tests.models.training.trips import build_trips, free_port, make_tracking_uri, write_trips

NAME = "serve-test"
START_POLL_S = 0.5
START_DEADLINE_S = 120  # a bounded wait for the model to load, not a speed check


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A champion in a fresh store and `python -m models serve` serving it on a free port."""
    workdir = tmp_path_factory.mktemp("serve")
    uri = make_tracking_uri(tmp_path_factory, workdir)
    features = write_trips(workdir / "trips.parquet", build_trips(rows=4000, seed=5))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        run = train_model(features, tracking_uri=uri, model_name=NAME, max_evals=1)
        register_model(run.run_id, name=NAME, tracking_uri=uri)
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "TO_BIKES_MODEL_NAME": NAME}
    log = (workdir / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "models", "serve", "--port", str(port)],
        cwd=workdir,
        env={**env, "PYTHONPATH": str(Path.cwd())},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, workdir / "serve.log")
        yield SimpleNamespace(url=url, uri=uri, features=features, workdir=workdir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_until_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Poll MLflow's /ping until the model is loaded; fail if the server dies or the deadline passes."""
    deadline = time.monotonic() + START_DEADLINE_S
    while process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the model server did not answer /ping within {START_DEADLINE_S} s: "
                f"{log_path.read_text()[-2000:]}"
            )
        try:
            if httpx.get(f"{url}/ping", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(START_POLL_S)
    raise AssertionError(f"the model server exited: {log_path.read_text()[-2000:]}")


def post(url: str, body: str) -> httpx.Response:
    return httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": "application/json"})


def split_payload(frame: pd.DataFrame) -> str:
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))})


@pytest.mark.integration
@pytest.mark.slow
def test_served_probabilities_equal_the_batch_scorer(server, monkeypatch):
    trips = pd.read_parquet(server.features).head(200)
    response = post(server.url, split_payload(select_features(trips)))
    assert response.status_code == 200, response.text
    served = np.asarray(response.json()["predictions"])
    monkeypatch.chdir(server.workdir)
    import mlflow

    mlflow.set_tracking_uri(server.uri)
    batch = score_trips(load_sklearn_model(f"models:/{NAME}@champion"), trips)
    assert served.shape == (200, 2)
    np.testing.assert_allclose(served[:, 1], batch["p_member"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(served.sum(axis=1), 1.0)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "mangle"),
    [
        ("missing column", lambda f: split_payload(f.drop(columns=["duration_s"]))),
        ("wrong type", lambda f: split_payload(f.astype({"hour": str}).assign(hour="eight"))),
        ("empty body", lambda f: ""),
        ("not json", lambda f: "{trips"),
    ],
)
def test_malformed_payload_is_a_4xx_with_mlflow_message(server, case, mangle):
    features = select_features(pd.read_parquet(server.features).head(3))
    response = post(server.url, mangle(features))
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    assert "Traceback" not in response.text
    assert response.json()["message"], case


@pytest.mark.unit
def test_dry_run_prints_mlflow_serving_the_champion_by_alias(monkeypatch, capsys):
    monkeypatch.setenv("TO_BIKES_SERVE_PORT", "5999")
    assert main(["serve", "--dry-run"]) == 0
    command = capsys.readouterr().out.split()
    assert command[1:5] == ["models", "serve", "-m", "models:/to-bikes-member@champion"]
    assert command[command.index("--port") + 1] == "5999"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--env-manager") + 1] == "local"
