"""End to end: blocks, deploy (code bundle on S3), a worker outside the checkout, two pipeline runs.

Uses the session's ``local_stack`` (Prefect, S3, MLflow on free ports) with a bucket of its own, a small
synthetic sample (2024 and 2025) under ``raw/``, and the same commands as the Makefile:
``python -m orchestration blocks``, ``deploy``,
``worker start|stop`` and ``run``. The worker
is stopped (by its pid file) even when a test fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.core.settings import PROJECT_ROOT
from tests.orchestration.e2e import (
    BUCKET,
    PIPELINE,
    Deployed,
    PipelineRun,
    prefect_client,
    read_messages,
    run_and_subflow_ids,
    s3_client,
    unpack_bundle,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_pipeline_completes_with_code_pulled_from_s3(deployed: Deployed, first_run: PipelineRun) -> None:
    with prefect_client(deployed) as client:
        state = client.read_flow_run(first_run.flow_run_id).state
        deployment = client.read_deployment_by_name(PIPELINE)
        messages = read_messages(client, run_and_subflow_ids(client, first_run.flow_run_id))
    assert state.is_completed()
    folder = deployment.pull_steps[0]["prefect_aws.deployments.steps.pull_from_s3"]["folder"]
    assert folder.startswith(f"flows/{deployed.sha}")
    listed = s3_client(deployed.stack).list_objects_v2(Bucket=BUCKET, Prefix=folder + "/")
    assert [item["Key"] for item in listed.get("Contents", [])] == [f"{folder}/bundle.tar.gz"]
    body = s3_client(deployed.stack).get_object(Bucket=BUCKET, Key=f"{folder}/bundle.tar.gz")["Body"].read()
    keys = set(unpack_bundle(body))
    assert {"orchestration/flows/pipeline.py", "models/data/preprocess.py", "prefect.yaml"} <= keys
    assert not [k for k in keys if k.startswith(("data/", ".venv/", "agent/.venv/", ".stack/", ".git/"))]
    assert any("'pull_from_s3' completed successfully" in m for m in messages), messages
    assert any("'run_shell_script' completed successfully" in m for m in messages), messages
    code = [m for m in messages if m.startswith("flows from ")]
    assert code, messages
    imported_from = Path(code[0].split()[2])
    assert not imported_from.is_relative_to(PROJECT_ROOT), code[0]


def test_processed_data_and_quarantine_are_on_s3(deployed: Deployed, first_run: PipelineRun) -> None:
    client = s3_client(deployed.stack)
    for name in ("trips.parquet", "trips.quarantine.parquet", "trips.quality.json", "trips.quality.md"):
        head = client.head_object(Bucket=BUCKET, Key=f"processed/2025/{name}")
        assert head["ContentLength"] > 0, name


def test_champion_carries_the_flow_run_and_the_commit(deployed: Deployed, first_run: PipelineRun) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(deployed.env["MLFLOW_TRACKING_URI"])
    # The session's MLflow server also holds other e2e modules' models: find this run's own version
    # (the honest gate may keep an earlier module's champion).
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(experiments, f"tags.`prefect.flow_run_id` = '{first_run.flow_run_id}'")
    assert len(found) == 1, [r.info.run_id for r in found]
    assert client.search_model_versions(f"run_id='{found[0].info.run_id}'")
    tags = found[0].data.tags
    assert tags["git.commit"] == deployed.sha
    assert tags["prefect.deployment"] == PIPELINE


def test_second_run_of_the_same_period_skips_preprocessing_and_training(
    deployed: Deployed, first_run: PipelineRun, second_run: PipelineRun
) -> None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with prefect_client(deployed) as client:
        states, artifacts = {}, {}
        for label, run in (("first", first_run), ("second", second_run)):
            runs = FlowRunFilter(id=FlowRunFilterId(any_=run_and_subflow_ids(client, run.flow_run_id)))
            task_runs = client.read_task_runs(flow_run_filter=runs)
            states[label] = [
                t.state.name for t in task_runs if t.name.startswith(("preprocess-period", "train-model"))
            ]
            found = client.read_artifacts(flow_run_filter=runs)
            artifacts[label] = [a.description or "" for a in found if a.key == "data-quality-2025"]
    assert {k: sorted(v) for k, v in states.items()} == {
        "first": ["Completed", "Completed"],
        "second": ["Cached", "Cached"],
    }
    assert len(artifacts["second"]) == 1
    assert "cached result" in artifacts["second"][0]
    assert "computed in this run" in artifacts["first"][0]
