"""models.data.ingest against the fake CKAN portal and the local S3 server: only what changed moves.

Each test ingests into a raw prefix of its own in the session's bucket, so tests do not see each other.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from models.core import storage
from models.core.errors import UserError
from models.core.settings import Settings
from models.data.ingest import ingest_portal
from models.data.raw_manifest import read_manifest, select_period_inputs
from stack.embedded import StackEnv
from tests.models.data.portal import Portal, serving, zip_bytes
from tests.models.data.rows import HEADER_2025, csv_bytes, row_2025

pytestmark = pytest.mark.integration


def month_csv(month: int, trips: int = 3, first_id: int = 0, day: int = 2) -> bytes:
    """A 2025 monthly CSV whose trips start in ``month``."""
    start, end = f"2025-{month:02d}-{day:02d} 08:00:00", f"2025-{month:02d}-{day:02d} 08:10:00"
    rows = [row_2025(first_id + month * 100 + i, start=start, end=end) for i in range(trips)]
    return csv_bytes(HEADER_2025, rows)


def year_zip(months: dict[int, bytes]) -> bytes:
    return zip_bytes({f"Bike share ridership 2025-{m:02d}.csv": data for m, data in months.items()})


@pytest.fixture
def portal() -> Iterator[Portal]:
    with serving(Portal(resources=[])) as state:
        yield state


@pytest.fixture
def settings(s3_env: StackEnv) -> Settings:
    """The session's S3 with a raw prefix of this test's own."""
    return s3_env.settings().model_copy(update={"raw_prefix": f"ingest-{uuid.uuid4().hex[:8]}/raw"})


def objects(settings: Settings) -> dict[str, tuple[str, str]]:
    """Key -> (ETag, LastModified) of every object under the raw prefix."""
    client = storage.s3_client(settings)
    listed = client.list_objects_v2(Bucket=settings.bucket, Prefix=settings.raw_prefix + "/")
    return {o["Key"]: (o["ETag"], str(o["LastModified"])) for o in listed.get("Contents", [])}


def ingest(portal: Portal, settings: Settings):
    from models.data.download import Downloader

    return ingest_portal(settings, api_url=portal.api, downloader=Downloader(backoff_s=0, progress=False))


def key(settings: Settings, month: int) -> str:
    return f"{settings.raw_prefix}/2025/Bike share ridership 2025-{month:02d}.csv"


def test_new_year_is_written_with_a_manifest_and_an_unchanged_portal_moves_nothing(portal, settings):
    portal.publish(2025, year_zip({1: month_csv(1), 2: month_csv(2)}), "2026-01-15T10:00:00")
    first = ingest(portal, settings)
    assert sorted(first.uploaded) == [key(settings, 1), key(settings, 2)]
    assert first.changed_months == ["2025-01", "2025-02"]
    assert first.bytes_downloaded == portal.bytes_sent > 0
    files = read_manifest(settings)["files"]
    assert files[key(settings, 1)]["months"] == ["2025-01"]
    written = f"s3://{settings.bucket}/{key(settings, 1)}"
    assert files[key(settings, 1)]["sha256"] == storage.file_digest(written)
    before, sent = objects(settings), portal.bytes_sent
    portal.requests.clear()
    again = ingest(portal, settings)
    print("unchanged portal:", json.dumps(again.to_dict()))
    assert (again.bytes_downloaded, portal.bytes_sent - sent) == (0, 0)
    assert [path for path, _ in portal.requests] == ["/api/3/action/package_show"]
    assert (again.uploaded, again.changed_months, again.manifest_written) == ([], [], False)
    assert objects(settings) == before


def test_a_republished_year_replaces_only_the_changed_file(portal, settings):
    months = {1: month_csv(1), 2: month_csv(2), 3: month_csv(3)}
    portal.publish(2025, year_zip(months), "2026-01-15T10:00:00")
    ingest(portal, settings)
    before = objects(settings)
    portal.publish(2025, year_zip(months), "2026-02-01T09:00:00")  # same content, new metadata
    same = ingest(portal, settings)
    assert (same.downloaded, same.uploaded, objects(settings)[key(settings, 1)]) == (
        ["bikeshare-ridership-2025"], [], before[key(settings, 1)]
    )  # fmt: skip
    portal.publish(2025, year_zip({**months, 3: month_csv(3, trips=5)}), "2026-03-01T09:00:00")
    changed = ingest(portal, settings)
    after = objects(settings)
    assert (changed.uploaded, changed.changed_months) == ([key(settings, 3)], ["2025-03"])
    assert after[key(settings, 3)] != before[key(settings, 3)]
    assert {k: after[k] for k in (key(settings, 1), key(settings, 2))} == {
        k: before[k] for k in (key(settings, 1), key(settings, 2))
    }


def test_a_garbage_file_is_written_reported_and_changes_only_the_months_it_replaced(portal, settings):
    """Found by `make soak` (garbage-raw): a file with no readable month failed the ingest (TypeError)."""
    garbage = b"\x00\x01 this is not a CSV \xff\xfe\n" * 64
    portal.publish(2025, year_zip({1: month_csv(1), 2: garbage}), "2026-01-15T10:00:00")
    new = ingest(portal, settings)
    assert (new.unreadable, new.changed_months) == ([key(settings, 2)], ["2025-01"])
    assert read_manifest(settings)["files"][key(settings, 2)]["months"] is None
    portal.publish(2025, year_zip({1: garbage, 2: month_csv(2)}), "2026-02-01T09:00:00")
    swapped = ingest(portal, settings)
    assert (swapped.unreadable, swapped.changed_months) == ([key(settings, 1)], ["2025-01", "2025-02"])


def test_a_withdrawn_file_or_year_is_kept_and_reported(portal, settings):
    portal.publish(2025, year_zip({1: month_csv(1), 2: month_csv(2)}), "2026-01-15T10:00:00")
    ingest(portal, settings)
    portal.publish(2025, year_zip({1: month_csv(1)}), "2026-02-01T09:00:00")
    dropped = ingest(portal, settings)
    assert (dropped.uploaded, dropped.withdrawn) == ([], [key(settings, 2)])
    assert key(settings, 2) in objects(settings)
    assert read_manifest(settings)["files"][key(settings, 2)]["withdrawn"] is True
    portal.withdraw(2025)
    gone = ingest(portal, settings)
    assert gone.withdrawn == [key(settings, 1)]
    assert {key(settings, 1), key(settings, 2)} <= set(objects(settings))
    assert ingest(portal, settings).withdrawn == []  # reported once


def test_a_corrupt_download_writes_nothing_and_fails_in_one_sentence(portal, settings):
    data = year_zip({1: month_csv(1)})
    portal.publish(2025, data[:-10], "2026-01-15T10:00:00", size=len(data))  # short body
    with pytest.raises(UserError, match=r"is \d+ bytes but the portal lists \d+; nothing was written"):
        ingest(portal, settings)
    flipped = bytearray(data)
    flipped[60] ^= 0xFF  # inside the compressed CSV: the CRC check fails
    portal.publish(2025, bytes(flipped), "2026-01-16T10:00:00")
    with pytest.raises(UserError, match="is not a readable ZIP archive"):
        ingest(portal, settings)
    assert objects(settings) == {}


def test_a_download_is_checked_against_the_portals_hash_when_it_lists_one(portal, settings):
    import hashlib

    data = year_zip({1: month_csv(1)})
    portal.publish(2025, data, "2026-01-15T10:00:00", hash="sha256:" + "0" * 64)
    mismatch = r"portal's hash sha256:0{64} \(got sha256:.*; nothing was written: run"
    with pytest.raises(UserError, match=mismatch):
        ingest(portal, settings)
    assert objects(settings) == {}
    bare_md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()  # bare hex, read by its length
    portal.publish(2025, data, "2026-01-16T10:00:00", hash=bare_md5)
    assert ingest(portal, settings).uploaded == [key(settings, 1)]


def test_months_come_from_the_rows_and_pick_a_month_runs_inputs(portal, settings):
    misnamed = month_csv(4)  # named March, holds April
    mixed = month_csv(5) + b"".join(month_csv(6).splitlines(keepends=True)[1:])
    portal.publish(2025, year_zip({1: month_csv(1), 3: misnamed, 5: mixed}), "2026-01-15T10:00:00")
    ingest(portal, settings)
    files = read_manifest(settings)["files"]
    assert (files[key(settings, 3)]["months"], files[key(settings, 5)]["months"]) == (
        ["2025-04"], ["2025-05", "2025-06"]
    )  # fmt: skip
    prefix = f"s3://{settings.bucket}/{settings.raw_prefix}/2025/"
    assert select_period_inputs(prefix, "2025-06", settings) == [f"s3://{settings.bucket}/{key(settings, 5)}"]
    assert select_period_inputs(prefix, "2025", settings) is None
    storage.s3_client(settings).put_object(Bucket=settings.bucket, Key=key(settings, 9), Body=month_csv(9))
    assert select_period_inputs(prefix, "2025-04", settings) == [
        f"s3://{settings.bucket}/{key(settings, 3)}",
        f"s3://{settings.bucket}/{key(settings, 9)}",  # not in the manifest: read for every month
    ]
    with pytest.raises(UserError, match="holds trips of 2025-02"):
        storage.s3_client(settings).delete_object(Bucket=settings.bucket, Key=key(settings, 9))
        select_period_inputs(prefix, "2025-02", settings)


def test_the_ingest_command_prints_what_it_did_and_a_dead_portal_in_one_line(portal, s3_env: StackEnv):
    """``python -m models ingest`` (``make ingest-data``): the report as JSON; a dead portal, one line."""
    import os
    import subprocess
    import sys

    from models.core.settings import PROJECT_ROOT

    portal.publish(2025, year_zip({1: month_csv(1)}), "2026-01-15T10:00:00")
    env = {**os.environ, **s3_env, "TO_BIKES_RAW_PREFIX": f"ingest-{uuid.uuid4().hex[:8]}/raw"}

    def run(api_url: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "models", "ingest", "--api-url", api_url]
        return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)

    done = run(portal.api)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["changed_months"] == ["2025-01"] and report["bytes_downloaded"] > 0, report
    again = json.loads(run(portal.api).stdout.strip().splitlines()[-1])
    assert (again["bytes_downloaded"], again["uploaded"]) == (0, []), again
    dead = run("http://127.0.0.1:9/api/3/action/package_show")
    errors = [line for line in dead.stderr.splitlines() if line.startswith("error: ")]
    assert dead.returncode == 2 and len(errors) == 1 and "Traceback" not in dead.stderr, dead.stderr
