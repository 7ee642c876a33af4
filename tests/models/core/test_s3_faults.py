"""S3 reads and writes through the fault proxy: transient faults are retried away, persistent ones fail
in one sentence that names the object and leave no partial output behind.

The proxy (``tests/faultproxy.py``) sits between the client and the local S3 server; the settings
point the client at the proxy, so the code under test is exactly what runs against AWS.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from models.core import storage
from models.core.errors import UserError
from models.core.settings import Settings
from models.data.preprocess import preprocess
from stack.embedded import StackEnv
from stack.sync import run_aws_sync
from tests.faultproxy import FaultProxy, FaultRule
from tests.models.data.bad_inputs import csv_bytes, good_csv, good_rows, zip_of

pytestmark = pytest.mark.integration
ROWS = 200  # good_csv() and july_zip() hold 100 rows each, with different trip ids


def july_zip() -> bytes:
    """A ZIP inside a ZIP (as published for November 2022) holding 100 trips."""
    return zip_of({"2025/inner.zip": zip_of({"2025-07.csv": csv_bytes(good_rows(first=100))})})


def transient_rules() -> list[FaultRule]:
    """One of each fault, a few times, on every kind of request preprocessing makes."""
    return [
        FaultRule("drop", count=1, methods={"GET"}, path=r"list-type=2"),
        FaultRule("503", count=2, methods={"HEAD"}),
        FaultRule("truncate", count=1, methods={"GET"}, path=r"\.zip$"),
        FaultRule("slowdown", count=2, methods={"GET"}),
        FaultRule("reset", count=1, methods={"PUT"}, path=r"/_tmp/"),
        FaultRule("500", count=2, methods={"PUT"}),
        FaultRule("503", count=1, methods={"DELETE"}),
    ]


@pytest.fixture
def proxy(s3_server: StackEnv) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.endpoint_url, lifetime_s=600) as running:
        yield running


def through(proxy: FaultProxy, env: StackEnv) -> Settings:
    """The stack's settings with the S3 endpoint replaced by the proxy."""
    return env.settings().model_copy(update={"s3_endpoint_url": proxy.url})


def keys_under(env: StackEnv, prefix: str) -> list[str]:
    client = storage.s3_client(env.settings())
    found = client.list_objects_v2(Bucket=env.bucket, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in found)


@pytest.fixture
def raw_prefix(s3_server: StackEnv) -> str:
    """Two input objects (a CSV and a nested ZIP) under a fresh prefix, put there without faults."""
    prefix = f"faults-{uuid.uuid4().hex[:8]}"
    client = storage.s3_client(s3_server.settings())
    client.put_object(Bucket=s3_server.bucket, Key=f"{prefix}/raw/2025/2025-06.csv", Body=good_csv())
    client.put_object(Bucket=s3_server.bucket, Key=f"{prefix}/raw/2025/2025-07.zip", Body=july_zip())
    return prefix


def assert_clear(message: str, names: str, env: StackEnv) -> None:
    assert names in message, message
    assert "\n" not in message and env["AWS_SECRET_ACCESS_KEY"] not in message, message


def test_preprocess_from_and_to_s3_survives_transient_faults(
    proxy: FaultProxy, s3_server: StackEnv, raw_prefix: str, tmp_path: Path
) -> None:
    rules = transient_rules()
    proxy.set_rules(*rules)
    source = f"s3://{s3_server.bucket}/{raw_prefix}/raw/2025/"
    output = f"s3://{s3_server.bucket}/{raw_prefix}/processed/2025/trips.parquet"
    summary = preprocess(source, output, settings=through(proxy, s3_server))
    assert (summary.rows_in, summary.rows_out) == (ROWS, ROWS)
    assert [(rule.fault, rule.hits) for rule in rules] == [(rule.fault, rule.count) for rule in rules]
    written = keys_under(s3_server, f"{raw_prefix}/processed/")
    assert [key.rsplit("/", 1)[1] for key in written] == [
        "trips.parquet",
        "trips.quality.json",
        "trips.quality.md",
        "trips.quarantine.parquet",
    ]
    local = storage.download_file(output, tmp_path / "trips.parquet", s3_server.settings())
    assert pq.read_metadata(local).num_rows == ROWS


def test_atomic_write_survives_faults_on_every_step(
    proxy: FaultProxy, s3_server: StackEnv, tmp_path: Path
) -> None:
    source = tmp_path / "blob.bin"
    source.write_bytes(b"x" * 3_000_000)
    rules = [
        FaultRule("503", count=2, methods={"PUT"}, path=r"/_tmp/"),  # upload to the temporary key
        FaultRule("drop", count=2, methods={"PUT"}),  # server-side copy to the final key
        FaultRule("slowdown", count=2, methods={"DELETE"}),  # removing the temporary key
    ]
    proxy.set_rules(*rules)
    key = f"atomic-{uuid.uuid4().hex[:8]}/blob.bin"
    storage.write_file_atomic(source, f"s3://{s3_server.bucket}/{key}", through(proxy, s3_server))
    assert [rule.hits for rule in rules] == [2, 2, 2]
    assert keys_under(s3_server, key.split("/")[0]) == [key]
    body = storage.s3_client(s3_server.settings()).get_object(Bucket=s3_server.bucket, Key=key)["Body"]
    assert body.read() == source.read_bytes()


@pytest.mark.slow
def test_persistent_read_faults_fail_in_one_sentence_and_publish_nothing(
    proxy: FaultProxy, s3_server: StackEnv, raw_prefix: str
) -> None:
    proxy.set_rules(FaultRule("503", count=None, methods={"GET"}))
    source = f"s3://{s3_server.bucket}/{raw_prefix}/raw/2025/"
    output = f"s3://{s3_server.bucket}/{raw_prefix}/processed/2025/trips.parquet"
    with pytest.raises(UserError) as caught:
        preprocess(source, output, settings=through(proxy, s3_server))
    assert_clear(str(caught.value), source, s3_server)
    assert len(proxy.faults()) >= storage.MAX_ATTEMPTS, "gave up without retrying"
    assert keys_under(s3_server, f"{raw_prefix}/processed/") == []


@pytest.mark.slow
def test_persistent_write_faults_leave_no_partial_or_temporary_parquet(
    proxy: FaultProxy, s3_server: StackEnv, raw_prefix: str
) -> None:
    final_key = rf"^/{s3_server.bucket}/{raw_prefix}/processed/2025/trips\.parquet$"  # not the _tmp/ upload
    proxy.set_rules(FaultRule("503", count=None, methods={"PUT"}, path=final_key))
    source = f"s3://{s3_server.bucket}/{raw_prefix}/raw/2025/"
    output = f"s3://{s3_server.bucket}/{raw_prefix}/processed/2025/trips.parquet"
    with pytest.raises(UserError) as caught:
        preprocess(source, output, settings=through(proxy, s3_server))
    assert_clear(str(caught.value), output, s3_server)
    left = keys_under(s3_server, f"{raw_prefix}/processed/")
    assert not [key for key in left if key.endswith("/trips.parquet")], left
    temporary = [key for key in keys_under(s3_server, storage.TEMP_PREFIX) if f"/{raw_prefix}/" in key]
    assert temporary == [], temporary


def sync_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "sample"
    for year, body in (("2024", good_csv()), ("2025", july_zip())):
        (folder / year).mkdir(parents=True)
        (folder / year / f"{year}.{'zip' if year == '2025' else 'csv'}").write_bytes(body)
    return folder


def sync_settings(proxy: FaultProxy, env: StackEnv, prefix: str) -> Any:
    return through(proxy, env).model_copy(update={"raw_prefix": f"{prefix}/raw"})


def test_aws_s3_sync_survives_transient_faults(
    proxy: FaultProxy, s3_server: StackEnv, tmp_path: Path
) -> None:
    rules = [
        FaultRule("slowdown", count=1, methods={"PUT"}),
        FaultRule("drop", count=1, methods={"PUT"}),
        FaultRule("500", count=1, methods={"GET"}, path=r"list-type=2"),
    ]
    proxy.set_rules(*rules)
    prefix = f"sync-{uuid.uuid4().hex[:8]}"
    settings = sync_settings(proxy, s3_server, prefix)
    uploaded = run_aws_sync(settings, sync_folder(tmp_path), settings.s3_uri(settings.raw_prefix) + "/")
    assert uploaded == 2
    assert [rule.hits for rule in rules] == [1, 1, 1]
    assert keys_under(s3_server, prefix) == [f"{prefix}/raw/2024/2024.csv", f"{prefix}/raw/2025/2025.zip"]


@pytest.mark.slow
def test_aws_s3_sync_fails_clearly_when_faults_persist(
    proxy: FaultProxy, s3_server: StackEnv, tmp_path: Path
) -> None:
    proxy.set_rules(FaultRule("503", count=None, methods={"PUT"}))
    prefix = f"sync-{uuid.uuid4().hex[:8]}"
    settings = sync_settings(proxy, s3_server, prefix)
    destination = settings.s3_uri(settings.raw_prefix) + "/"
    with pytest.raises(UserError) as caught:
        run_aws_sync(settings, sync_folder(tmp_path), destination)
    assert_clear(str(caught.value), destination, s3_server)
    assert keys_under(s3_server, prefix) == []


def test_paginated_listing_returns_every_key(s3_server: StackEnv) -> None:
    """A listing longer than one page (s3rver's DES continuation tokens need OpenSSL's legacy provider)."""
    prefix = f"pages-{uuid.uuid4().hex[:8]}/"
    client = storage.s3_client(s3_server.settings())
    names = [f"{prefix}trips.parquet", f"{prefix}trips.parquet.tmp-1", f"{prefix}trips.quality.json"]
    for name in names:
        client.put_object(Bucket=s3_server.bucket, Key=name, Body=b"x")
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=s3_server.bucket, Prefix=prefix, PaginationConfig={"PageSize": 1}
    )
    assert [item["Key"] for page in pages for item in page.get("Contents", [])] == names
