"""The preprocess flow in this process against the local stack: cache hits, misses and user errors.

Complements the end-to-end test (which goes through a deployment and a worker) with the cases a
person meets when rerunning: a new raw file must invalidate the cache, a deleted output must be
rebuilt even though the cache still knows the inputs, and a year without data fails in one sentence
without retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stack.embedded import StackEnv
from tests.orchestration.e2e import upload_sample

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "to-bikes-flow"


def s3_client(stack: StackEnv) -> Any:
    return stack.s3_client()


@pytest.fixture(scope="module")
def flow_stack(local_stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """Blocks pointing at a bucket of this module's own, with 2025 of a small sample under raw/."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from orchestration.deploy.blocks import save_all

    folder = tmp_path_factory.mktemp("flow-sample")
    upload_sample(local_stack, folder, bucket=BUCKET, seed=11, years=("2025",), rows=2000)
    settings = local_stack.settings().model_copy(update={"bucket": BUCKET})
    with temporary_settings(updates={PREFECT_API_URL: local_stack["PREFECT_API_URL"]}):
        save_all(settings)
        yield local_stack


def preprocess_state(**params: Any) -> Any:
    """The final state of one in-process preprocess flow run."""
    from orchestration.flows.pipeline import preprocess_flow

    return preprocess_flow(**params, return_state=True)


def test_rerun_is_cached_until_a_raw_file_changes(flow_stack: StackEnv) -> None:
    first = preprocess_state(year=2025, month=3).result()
    again = preprocess_state(year=2025, month=3).result()
    assert (first["cached"], again["cached"]) == (False, True)
    assert again["rows_out"] == first["rows_out"]
    client = s3_client(flow_stack)
    source = "raw/2025/Bike share ridership 2025-03.csv"
    copy = "raw/2025/late-upload 2025-03.csv"
    client.copy_object(Bucket=BUCKET, Key=copy, CopySource={"Bucket": BUCKET, "Key": source})
    try:
        changed = preprocess_state(year=2025, month=3).result()
    finally:
        client.delete_object(Bucket=BUCKET, Key=copy)
    assert changed["cached"] is False
    assert changed["quarantined"] > first["quarantined"]  # the copy's trips are duplicates


def test_a_deleted_output_is_rebuilt_despite_the_cache(flow_stack: StackEnv) -> None:
    first = preprocess_state(year=2025, month=4).result()
    bucket_key = first["output"].removeprefix(f"s3://{BUCKET}/")
    s3_client(flow_stack).delete_object(Bucket=BUCKET, Key=bucket_key)
    rebuilt = preprocess_state(year=2025, month=4).result()
    assert rebuilt["cached"] is False
    assert s3_client(flow_stack).head_object(Bucket=BUCKET, Key=bucket_key)["ContentLength"] > 0
    assert preprocess_state(year=2025, month=4).result()["cached"] is True


def test_a_year_without_raw_data_fails_in_one_sentence(flow_stack: StackEnv) -> None:
    state = preprocess_state(year=2019)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert "holds no .csv or .zip objects" in str(error)
    assert "\n" not in str(error)
