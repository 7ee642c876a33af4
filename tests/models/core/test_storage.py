"""Storage helpers: URIs, listing, atomic writes and digests, locally and against a local S3 server."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import pytest

from models.core import storage
from models.core.errors import UserError
from models.data.preprocess import preprocess
from tests.models.data.rows import HEADER_2025, csv_bytes, row_2025


@pytest.mark.unit
def test_s3_uris_split_and_are_recognised():
    assert storage.is_s3("s3://b/k/x.csv") and not storage.is_s3("/tmp/x.csv")
    assert storage.split_s3_uri("s3://bucket/raw/2025/a.csv") == ("bucket", "raw/2025/a.csv")
    assert storage.split_s3_uri("s3://bucket") == ("bucket", "")
    with pytest.raises(UserError, match="names no bucket"):
        storage.split_s3_uri("s3:///key")


@pytest.mark.unit
def test_list_inputs_finds_csv_and_zip_sorted_and_skips_junk(tmp_path):
    for name in ("2025/b.csv", "2025/a.CSV", "2024/x.zip", "2025/notes.txt", "__MACOSX/2025/._a.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = [p.removeprefix(str(tmp_path) + "/") for p in storage.list_inputs(tmp_path)]
    assert found == ["2024/x.zip", "2025/a.CSV", "2025/b.csv"]
    assert storage.list_inputs(tmp_path / "2025" / "b.csv") == [str(tmp_path / "2025" / "b.csv")]


@pytest.mark.unit
def test_missing_input_is_a_user_error_naming_it(tmp_path):
    with pytest.raises(UserError, match="nowhere"):
        storage.list_inputs(tmp_path / "nowhere")


@pytest.mark.unit
def test_local_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(b"new")
    target = tmp_path / "deep" / "out.bin"
    target.parent.mkdir()
    target.write_bytes(b"old")
    storage.write_file_atomic(source, target)
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


@pytest.mark.unit
def test_moving_a_staged_file_renames_it_into_place_or_copies_when_it_cannot(tmp_path, monkeypatch):
    staged = tmp_path / "staged.bin"
    staged.write_bytes(b"new")
    target = tmp_path / "out" / "file.bin"
    inode = staged.stat().st_ino
    assert storage.move_file_atomic(staged, target) == str(target)
    assert target.read_bytes() == b"new" and target.stat().st_ino == inode  # renamed, not copied
    assert not staged.exists()

    def cross_device(self, _target):
        raise OSError(18, "Invalid cross-device link")

    staged.write_bytes(b"newer")
    monkeypatch.setattr(type(staged), "replace", cross_device)
    monkeypatch.setattr(storage, "write_file_atomic", lambda src, dest, settings=None: f"copied {src}")
    assert storage.move_file_atomic(staged, target) == f"copied {staged}"


@pytest.mark.unit
def test_file_digest_is_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert storage.file_digest(path) == "sha256:" + hashlib.sha256(b"abc").hexdigest()


@pytest.mark.integration
def test_s3_round_trip_lists_downloads_and_writes_atomically(s3_env, tmp_path):
    settings = s3_env.settings()
    local = tmp_path / "a.csv"
    local.write_bytes(b"hello")
    uri = f"s3://{s3_env.bucket}/storage-test/raw/2025/a.csv"
    storage.write_file_atomic(local, uri, settings)
    assert storage.list_inputs(f"s3://{s3_env.bucket}/storage-test/raw/", settings) == [uri]
    assert storage.download_file(uri, tmp_path / "copy.csv", settings).read_bytes() == b"hello"
    assert storage.file_digest(uri, settings) == storage.file_digest(local)
    client = storage.s3_client(settings)
    keys = [
        o["Key"] for o in client.list_objects_v2(Bucket=s3_env.bucket, Prefix="storage-test/")["Contents"]
    ]
    assert keys == ["storage-test/raw/2025/a.csv"]  # no temporary key beside the output


def record_put_keys(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every key storage's S3 clients PUT an object body to (uploads, not server-side copies)."""
    put_keys: list[str] = []
    make_client = storage.s3_client

    def recording_client(*args, **kwargs):
        client = make_client(*args, **kwargs)
        client.meta.events.register(
            "before-parameter-build.s3.PutObject", lambda params, **_: put_keys.append(params["Key"])
        )
        return client

    monkeypatch.setattr(storage, "s3_client", recording_client)
    return put_keys


@pytest.mark.integration
def test_s3_atomic_write_stages_under_the_temp_prefix_and_removes_it(s3_env, tmp_path, monkeypatch):
    settings = s3_env.settings()
    local = tmp_path / "trips.parquet"
    local.write_bytes(b"published")
    key = f"temp-test-{uuid.uuid4().hex[:8]}/processed/2025/trips.parquet"
    put_keys = record_put_keys(monkeypatch)
    storage.write_file_atomic(local, f"s3://{s3_env.bucket}/{key}", settings)
    assert len(put_keys) == 1, put_keys
    assert re.fullmatch(rf"_tmp/[0-9a-f]{{32}}/{re.escape(key)}", put_keys[0]), put_keys
    assert storage.TEMP_PREFIX == "_tmp/"
    client = storage.s3_client(settings)
    assert client.get_object(Bucket=s3_env.bucket, Key=key)["Body"].read() == b"published"
    listed = client.list_objects_v2(Bucket=s3_env.bucket, Prefix=put_keys[0])
    assert listed.get("Contents", []) == []  # the temporary object is gone after success
    beside = client.list_objects_v2(Bucket=s3_env.bucket, Prefix=key.split("/")[0] + "/")["Contents"]
    assert [o["Key"] for o in beside] == [key]


@pytest.mark.integration
def test_listing_a_bucket_root_skips_temporary_objects(s3_env):
    settings = s3_env.settings()
    bucket = f"root-test-{uuid.uuid4().hex[:8]}"
    client = storage.s3_client(settings)
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=f"{storage.TEMP_PREFIX}{'0' * 32}/raw/2025/left.csv", Body=b"x")
    client.put_object(Bucket=bucket, Key="raw/2025/a.csv", Body=b"x")
    assert storage.list_inputs(f"s3://{bucket}/", settings) == [f"s3://{bucket}/raw/2025/a.csv"]


@pytest.mark.integration
def test_an_s3_prefix_with_only_junk_is_one_sentence(s3_env):
    settings = s3_env.settings()
    client = storage.s3_client(settings)
    client.put_object(Bucket=s3_env.bucket, Key="junk-test/raw/__MACOSX/._2025-01.csv", Body=b"x")
    client.put_object(Bucket=s3_env.bucket, Key="junk-test/raw/.hidden/2025-01.csv", Body=b"x")
    with pytest.raises(UserError, match=r"junk-test/raw/ holds no \.csv or \.zip objects"):
        storage.list_inputs(f"s3://{s3_env.bucket}/junk-test/raw/", settings)


@pytest.mark.integration
def test_preprocess_reads_and_writes_s3(s3_env, tmp_path):
    settings = s3_env.settings()
    source = tmp_path / "2025-06.csv"
    source.write_bytes(
        csv_bytes(HEADER_2025, [row_2025(i) for i in range(10)] + [row_2025(99, duration="0")])
    )
    raw = f"s3://{s3_env.bucket}/pre-test/raw/2025/2025-06.csv"
    storage.write_file_atomic(source, raw, settings)
    output = f"s3://{s3_env.bucket}/pre-test/processed/2025/trips.parquet"
    summary = preprocess(f"s3://{s3_env.bucket}/pre-test/raw/", output, period="2025", settings=settings)
    assert (summary.rows_in, summary.rows_out, summary.quarantined) == (11, 10, 1)
    assert summary.by_file == {"2025/2025-06.csv": 11}
    client = storage.s3_client(settings)
    keys = {
        o["Key"]
        for o in client.list_objects_v2(Bucket=s3_env.bucket, Prefix="pre-test/processed/")["Contents"]
    }
    assert keys == {
        f"pre-test/processed/2025/trips.{suffix}"
        for suffix in ("parquet", "quarantine.parquet", "quality.json", "quality.md")
    }
    report = client.get_object(Bucket=s3_env.bucket, Key="pre-test/processed/2025/trips.quality.json")["Body"]
    assert json.loads(report.read())["rows_in"] == 11


@pytest.mark.integration
def test_missing_s3_prefix_is_a_user_error(s3_env):
    with pytest.raises(UserError, match=r"holds no \.csv or \.zip"):
        storage.list_inputs(f"s3://{s3_env.bucket}/no-such-prefix/", s3_env.settings())


@pytest.mark.integration
def test_a_report_on_s3_is_printed_as_an_http_link_a_browser_opens(s3_env, tmp_path):
    """``models.scoring.monitor.report_link``: a presigned GET (a week) that needs no credentials, and
    that serves an HTML report as text/html so the browser shows it instead of downloading it."""
    import urllib.parse
    import urllib.request

    from models.scoring.monitor import report_link

    settings = s3_env.settings()
    page = tmp_path / "monitoring.html"
    page.write_text("<html><body>drift report</body></html>")
    uri = storage.write_file_atomic(page, f"s3://{s3_env.bucket}/reports/2025-12/monitoring.html", settings)
    link = report_link(settings, uri)
    parsed = urllib.parse.urlparse(link)
    assert parsed.scheme == "http" and parsed.path == f"/{s3_env.bucket}/reports/2025-12/monitoring.html"
    assert urllib.parse.parse_qs(parsed.query)["X-Amz-Expires"] == [str(7 * 24 * 3600)]
    with urllib.request.urlopen(link, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/html")
        assert b"drift report" in response.read()
    assert report_link(settings, "data/local.html") == "data/local.html"
