"""End to end: blocks, deploy (code bundle on S3), a worker outside the checkout, two pipeline runs.

Uses the session's ``local_stack`` (Prefect, S3, MLflow on free ports) with a bucket of its own, a small
synthetic sample (2024 and 2025) under ``raw/``, and the same commands as the Makefile:
``python -m orchestration blocks``, ``deploy``,
``worker start|stop`` and ``run``. The worker
is stopped (by its pid file) even when a test fails.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from models.core.settings import PROJECT_ROOT
from models.sample.generate import generate_sample
from models.training.lineage import run_git
from stack.embedded import StackEnv

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUCKET = "to-bikes-e2e"
PIPELINE = "to-bikes-pipeline/weekly"
MODEL = "to-bikes-member"
COMMAND_TIMEOUT_S = 900
_PRIVATE = ("AWS_", "MLFLOW_", "PREFECT_", "TO_BIKES_")
_RUN_URL = re.compile(r"/runs/flow-run/([0-9a-f-]{36})")


@dataclass
class Deployed:
    """The environment of the deployed project and how to reach its servers."""

    env: dict[str, str]
    stack: StackEnv
    sha: str


@dataclass
class PipelineRun:
    """One triggered run: its id and the trigger command's output."""

    flow_run_id: str
    output: str


def run_module(
    module: str, env: dict[str, str], *args: str, check: bool = True, timeout: int = COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` in agent/.venv from the project root; with ``check``, exit 0 or fail."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        output = f"{done.stdout}\n{done.stderr}"
        assert done.returncode == 0, f"{module} {args} exited {done.returncode}:\n{output}"
    return done


def s3_client(stack: StackEnv) -> Any:
    return stack.s3_client()


def unpack_bundle(body: bytes) -> dict[str, bytes]:
    """The files of a ``bundle.tar.gz`` (``orchestration.deploy.bundle``): relative path -> bytes."""
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def upload_sample(
    stack: StackEnv,
    folder: Path,
    bucket: str = BUCKET,
    seed: int = 7,
    years: tuple[str, ...] = ("2024", "2025"),
    rows: int = 3000,
) -> None:
    """A generated sample's ``years`` under ``raw/<year>/`` of ``bucket`` (created here unless another
    module on the same session stack made it already: ``deployed`` is shared by several e2e modules)."""
    generate_sample(folder, seed=seed, rows=rows)
    client = s3_client(stack)
    if bucket not in {item["Name"] for item in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)
    for year in years:
        for path in sorted((folder / year).iterdir()):
            client.upload_file(str(path), bucket, f"raw/{year}/{path.name}")


def save_blocks(env: dict[str, str]) -> None:
    """``make blocks`` (the block types registered, then the documents saved) with this environment."""
    prefect = str(Path(sys.executable).parent / "prefect")
    registered = subprocess.run(
        [prefect, "--no-prompt", "block", "register", "-f", "orchestration/flows/config_block.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert registered.returncode == 0, registered.stdout + registered.stderr
    run_module("orchestration", env, "blocks")


def deploy_project(env: dict[str, str]) -> None:
    """``make blocks deploy`` with this environment: blocks saved, code bundle and deployments pushed.

    ``--allow-dirty``: a clean checkout (CI) deploys ``flows/<sha>/``, a work tree with changes
    ``flows/<sha>-dirty-<time>/``.
    """
    save_blocks(env)
    run_module("orchestration", env, "deploy", "--allow-dirty")


@pytest.fixture(scope="module")
def deployed(local_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """Blocks saved, deployments pushed to S3, a worker running from a folder without the code."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE) and k != "PYTHONPATH"}
    env = {**base, **local_stack, "TO_BIKES_BUCKET": BUCKET, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    upload_sample(local_stack, tmp_path_factory.mktemp("sample"))
    deploy_project(env)
    with worker_running(env, local_stack) as deployed:
        yield deployed


@contextlib.contextmanager
def worker_running(env: dict[str, str], stack: StackEnv) -> Iterator[Deployed]:
    """``make demo``'s background worker for ``env``, stopped on the way out whatever happened."""
    try:
        run_module("orchestration", env, "worker", "start")
        yield Deployed(env=env, stack=stack, sha=run_git(["rev-parse", "HEAD"]) or "")
    finally:
        run_module("orchestration", env, "worker", "stop", check=False, timeout=120)


def trigger_pipeline(deployed: Deployed) -> PipelineRun:
    """``make run``'s command (latest year, one search trial); it must exit 0 (Completed)."""
    done = run_module("orchestration", deployed.env, "run", "--param", "max_evals=1", "--timeout", "600")
    match = _RUN_URL.search(done.stdout)
    assert match, done.stdout
    assert "Completed" in done.stdout
    return PipelineRun(flow_run_id=match[1], output=done.stdout)


@pytest.fixture(scope="module")
def first_run(deployed: Deployed) -> PipelineRun:
    return trigger_pipeline(deployed)


@pytest.fixture(scope="module")
def second_run(deployed: Deployed, first_run: PipelineRun) -> PipelineRun:
    return trigger_pipeline(deployed)


def prefect_client(deployed: Deployed) -> Any:
    """A sync client of the test stack's API (this process may have imported Prefect already)."""
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(deployed.env["PREFECT_API_URL"])


def run_and_subflow_ids(client: Any, flow_run_id: str) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    children = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
    )
    return [flow_run_id, *(child.id for child in children)]


def read_messages(client: Any, flow_run_ids: list[Any]) -> list[str]:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids)))
    return [entry.message for entry in logs]


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
