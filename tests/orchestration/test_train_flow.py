"""The pipeline flow in this process against the local stack: training is cached, and a month trains.

An unchanged rerun must reuse the MLflow run (no second run, same registered version); a deleted run
must be trained again; a run for one month must train on that month and the months before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from models.core.names import DEFAULT_MARGIN
from stack.embedded import StackEnv
from tests.orchestration.e2e import upload_sample

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "to-bikes-train-flow"
EXPERIMENT = "to-bikes-train-flow"
MODEL = "to-bikes-train-flow"


@pytest.fixture(scope="module")
def train_stack(local_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """Blocks for a bucket, experiment and model of this module's own, 2025 of a sample under raw/."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from orchestration.deploy.blocks import save_all

    folder = tmp_path_factory.mktemp("train-sample")
    upload_sample(local_stack, folder, bucket=BUCKET, seed=13, years=("2025",), rows=8000)
    settings = local_stack.settings().model_copy(
        update={"bucket": BUCKET, "experiment": EXPERIMENT, "model_name": MODEL}
    )
    with temporary_settings(updates={PREFECT_API_URL: local_stack["PREFECT_API_URL"]}):
        save_all(settings)
        yield local_stack


def run_pipeline(**params: Any) -> dict[str, Any]:
    """One in-process pipeline run (one search trial); it must complete."""
    from orchestration.flows.pipeline import pipeline_flow

    state = pipeline_flow(max_evals=1, **params, return_state=True)
    assert state.is_completed(), state.message
    return state.result()


def mlflow_client(stack: StackEnv) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(stack["MLFLOW_TRACKING_URI"])


def test_an_unchanged_rerun_reuses_the_run_until_it_is_deleted(train_stack: StackEnv) -> None:
    first = run_pipeline(year=2025)
    again = run_pipeline(year=2025)
    assert (first["training_cached"], again["training_cached"]) == (False, True)
    assert (again["run_id"], again["version"]) == (first["run_id"], first["version"])
    client = mlflow_client(train_stack)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 1
    client.delete_run(first["run_id"])
    retrained = run_pipeline(year=2025)
    assert retrained["training_cached"] is False
    assert retrained["run_id"] != first["run_id"]
    assert retrained["version"] != first["version"]  # the deleted run's version does not stand for it


def test_a_month_trains_on_itself_and_the_months_before(train_stack: StackEnv) -> None:
    from orchestration.flows.pipeline import preprocess_flow

    for month in (1, 2):
        preprocess_flow(year=2025, month=month)
    found = run_pipeline(year=2025, month=3)
    assert found["period"] == "2025-03" and found["training_cached"] is False
    params = mlflow_client(train_stack).get_run(found["run_id"]).data.params
    assert params["n_inputs"] == "3"
    assert [uri.rsplit("/", 2)[-2] for uri in params["input"].split(",")] == ["2025-01", "2025-02", "2025-03"]
    # The champion (the yearly run's) trained on March: the gate compares on December, after both windows.
    assert (found["train_months"], found["valid_month"], found["compared_on"]) == (
        "2025-01..2025-02",
        "2025-03",
        "2025-12",
    )
    challenger, champion = found["challenger_score"], found["champion_score"]
    assert found["promoted"] == (challenger > champion + DEFAULT_MARGIN)
    assert found["decision"] == ("promoted" if found["promoted"] else "kept-champion")
    assert "2025-12" in found["reason"] and found["champion_version"]
    assert found["version_url"].endswith(
        f"/#/models/{MODEL}/versions/{found['version']}?workflowType=machine_learning"
    )


def test_a_month_without_earlier_months_fails_in_one_sentence(train_stack: StackEnv) -> None:
    from orchestration.flows.pipeline import pipeline_flow

    state = pipeline_flow(year=2025, month=1, max_evals=1, return_state=True)
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert "needs at least two months" in message and "2025-01" in message


def test_a_run_loads_the_bucket_block_once_and_the_next_run_again(
    train_stack: StackEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestration.flows.caching as caching
    from models.core.names import BUCKET_BLOCK

    loaded, real_load = [], caching.load_block
    counting = lambda kind, name: loaded.append(name) or real_load(kind, name)  # noqa: E731
    monkeypatch.setattr(caching, "load_block", counting)
    for _ in range(2):
        run_pipeline(year=2025)
    assert loaded == [BUCKET_BLOCK, BUCKET_BLOCK]  # one per run, for both cached tasks


def test_a_month_run_again_after_the_champion_moved_reuses_its_version(train_stack: StackEnv) -> None:
    """A month's run twice with its inputs unchanged (a republication's month events), another month's
    promotion between them: the second run must reuse the first's run and version, not train a second
    version of one training input because the champion it scored was replaced."""
    from orchestration.flows.pipeline import preprocess_flow

    client = mlflow_client(train_stack)
    for month in (1, 2, 3):
        preprocess_flow(year=2025, month=month)
    first = run_pipeline(year=2025, month=4)
    later = run_pipeline(year=2025, month=5)
    before = client.get_registered_model(MODEL).aliases.get("champion")
    client.set_registered_model_alias(MODEL, "champion", later["version"])  # the other month's promotion
    try:
        again = run_pipeline(year=2025, month=4)
    finally:
        if before is not None:
            client.set_registered_model_alias(MODEL, "champion", before)
    assert again["training_cached"] is True
    assert (again["run_id"], again["version"]) == (first["run_id"], first["version"])
    april = client.search_model_versions(f"name = '{MODEL}' and run_id = '{first['run_id']}'")
    digest = client.get_run(first["run_id"]).data.tags["data.digest"]
    versions = client.search_model_versions(f"name = '{MODEL}'")
    same_input = [v for v in versions if v.tags.get("data.digest") == digest]
    assert [v.version for v in same_input] == [v.version for v in april] == [first["version"]]
    assert again["decision"] == "kept-champion"
    assert f"Champion is version {later['version']} but the run compared with" in again["reason"]


def test_a_month_trained_again_under_another_cache_key_keeps_one_version(
    train_stack: StackEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 36's long soak (twice, 2024-04): a month's first run computed its training cache key before
    another month's run rewrote one of its inputs and read the inputs after it; the second run read the
    same bytes under the key of the new ETags, missed the cache and trained again. Here the first key
    is made stale: the second run trains again, and its training is registered as the first's version."""
    from orchestration.flows import caching
    from orchestration.flows.pipeline import preprocess_flow

    for month in (1, 2, 3):
        preprocess_flow(year=2025, month=month)
    real_key = caching.InputObjectChecksums.compute_key
    with monkeypatch.context() as patch:
        patch.setattr(
            caching.InputObjectChecksums, "compute_key", lambda *a, **k: "stale " + real_key(*a, **k)
        )
        first = run_pipeline(year=2025, month=7)
    again = run_pipeline(year=2025, month=7)
    assert again["training_cached"] is False and again["run_id"] != first["run_id"]
    assert again["version"] == first["version"]
    client = mlflow_client(train_stack)
    tags = client.get_run(again["run_id"]).data.tags
    assert tags["registry.same_training_as"] == f"version {first['version']} (run {first['run_id']})"
    versions = client.search_model_versions(
        f"name = '{MODEL}' and tags.`data.digest` = '{tags['data.digest']}'"
    )
    assert [v.version for v in versions] == [first["version"]]
