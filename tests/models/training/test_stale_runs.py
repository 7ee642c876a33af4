"""``models.training.stale_runs``: RUNNING runs of ended flow runs are marked FAILED, others kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from models.training.stale_runs import SWEPT_TAG, sweep_stale_runs

pytestmark = pytest.mark.unit


def test_only_runs_of_ended_flow_runs_are_swept(tmp_path: Path) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep", artifact_location=str(tmp_path / "artifacts"))

    def start(flow_run_id: str) -> str:
        return client.create_run(experiment, tags={"prefect.flow_run_id": flow_run_id}).info.run_id

    crashed, running = start("f-crashed"), start("f-running")
    by_hand, finished = start("none"), start("f-done")
    client.set_terminated(finished, status="FINISHED")
    ended = {"f-crashed": "Crashed", "f-done": "Completed"}
    asked: list[str] = []

    def flow_run_end(flow_run_id: str) -> str | None:
        asked.append(flow_run_id)
        return ended.get(flow_run_id)

    assert sweep_stale_runs(client, "sweep", flow_run_end) == [crashed]
    assert client.get_run(crashed).info.status == "FAILED"
    assert client.get_run(crashed).data.tags[SWEPT_TAG] == "flow run f-crashed ended Crashed"
    assert [client.get_run(r).info.status for r in (running, by_hand)] == ["RUNNING", "RUNNING"]
    assert "f-done" not in asked  # a finished run is not looked at
    assert sweep_stale_runs(client, "no-such-experiment", flow_run_end) == []
