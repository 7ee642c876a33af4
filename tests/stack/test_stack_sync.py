"""``make sync-data``: uploads what is new, a rerun uploads nothing, every object verified."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from stack.embedded import StackEnv
from tests.stack.stack_helpers import run_stack_cli

pytestmark = pytest.mark.integration

SUMMARY = re.compile(
    r"^synced .*: (\d+) files, (\d+) uploaded, (\d+) verified by ETag, (\d+) by download", re.M
)


@pytest.fixture
def sync_env(s3_server: StackEnv, request: pytest.FixtureRequest) -> StackEnv:
    """The shared S3 server with a raw prefix of this test's own (other tests share the bucket)."""
    return s3_server | {"TO_BIKES_RAW_PREFIX": f"raw-{request.node.name}"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A small raw-data folder shaped like data/sample, files dated a minute ago."""
    root = tmp_path / "sample"
    files = {
        "2023/Bike share ridership 2023-01.csv": "trip_id,user_type\n1,Annual Member\n",
        "2023/Bike share ridership 2023-02.csv": "trip_id,user_type\n2,Casual Member\n",
        "2024/bikeshare-ridership-2024.zip": os.urandom(9 * 1024 * 1024),
    }
    past = time.time() - 60
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        os.utime(path, (past, past))
    return root


def sync(env: StackEnv, folder: Path) -> tuple[int, int, int, int]:
    """Run the sync; (files, uploaded, verified by ETag, verified by download)."""
    result = run_stack_cli(env, "sync-data", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert env["AWS_SECRET_ACCESS_KEY"] not in result.stdout + result.stderr
    match = SUMMARY.search(result.stdout)
    assert match, result.stdout
    return tuple(int(g) for g in match.groups())


def s3(env: StackEnv) -> Any:
    return env.s3_client()


def test_sync_uploads_everything_once_then_nothing(sync_env: StackEnv, data_dir: Path) -> None:
    assert sync(sync_env, data_dir) == (3, 3, 3, 0)
    assert sync(sync_env, data_dir) == (3, 0, 3, 0)
    prefix = sync_env["TO_BIKES_RAW_PREFIX"]
    manifest = json.loads(
        s3(sync_env).get_object(Bucket=sync_env.bucket, Key=f"manifests/{prefix}/sample.json")["Body"].read()
    )
    assert sorted(manifest["files"]) == sorted(
        f"{prefix}/{p.relative_to(data_dir).as_posix()}" for p in data_dir.rglob("*.*")
    )
    raw = json.loads(
        s3(sync_env).get_object(Bucket=sync_env.bucket, Key=f"{prefix}/_manifest.json")["Body"].read()
    )
    assert sorted(raw["files"]) == sorted(manifest["files"])  # the same manifest the ingest writes
    assert {entry["months"] for entry in raw["files"].values()} == {None}  # no ridership header: read always


def test_sync_repairs_an_object_changed_at_the_same_size(sync_env: StackEnv, data_dir: Path) -> None:
    assert sync(sync_env, data_dir)[1] == 3
    prefix = sync_env["TO_BIKES_RAW_PREFIX"]
    key = f"{prefix}/2023/Bike share ridership 2023-01.csv"
    original = (data_dir / "2023" / "Bike share ridership 2023-01.csv").read_bytes()
    s3(sync_env).put_object(Bucket=sync_env.bucket, Key=key, Body=original.replace(b"Annual", b"Xnnual"))
    assert sync(sync_env, data_dir) == (3, 1, 3, 0)
    assert s3(sync_env).get_object(Bucket=sync_env.bucket, Key=key)["Body"].read() == original
    assert sync(sync_env, data_dir)[1] == 0


def test_a_missing_folder_is_one_sentence(sync_env: StackEnv, tmp_path: Path) -> None:
    result = run_stack_cli(sync_env, "sync-data", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: data folder {tmp_path / 'nowhere'} does not exist;")
