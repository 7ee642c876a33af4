"""models.data.fetch against a fake CKAN portal on 127.0.0.1: resolution, retries, resume, unpacking."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT as ROOT
from models.data.download import Downloader, TransientError
from models.data.fetch import fetch_years
from models.data.preprocess import preprocess
from tests.models.data.portal import Portal, serving, zip_bytes
from tests.models.data.rows import HEADER_2024, HEADER_2025, csv_bytes, row_2025

pytestmark = pytest.mark.integration

CLI_TIMEOUT_S = 120


def year_2024() -> bytes:
    rows = [
        f"{26682755 + i},840,7259,8/1/2024 {i}:00,Lower Spadina Ave / Lake Shore Blvd,7712,8/1/2024 {i}:14,"
        "Bay St / College St,5795,Annual Member,ICONIC"
        for i in range(6)
    ]
    csv = csv_bytes(HEADER_2024, rows)
    return zip_bytes(
        {
            "bikeshare-ridership-2024/Bike share ridership 2024-08.csv": csv,
            "__MACOSX/bikeshare-ridership-2024/._Bike share ridership 2024-08.csv": b"\x00\x05\x16\x07junk",
        }
    )


def year_2025() -> bytes:
    january = csv_bytes(
        HEADER_2025, [row_2025(i, start="2025-01-02 08:00:00", end="2025-01-02 08:10:00") for i in range(4)]
    )
    february = csv_bytes(
        HEADER_2025,
        [row_2025(10 + i, start="2025-02-03 08:00:00", end="2025-02-03 08:10:00") for i in range(5)],
    )
    inner = zip_bytes({"Bike share ridership 2025-02.csv": february})
    return zip_bytes({"Bike share ridership 2025-01.csv": january, "Bike share ridership 2025-02.zip": inner})


@pytest.fixture
def portal() -> Iterator[Portal]:
    state = Portal(
        files={
            "/dl/bikeshare-ridership-2024.zip": year_2024(),
            "/dl/bikeshare-ridership-2025.zip": year_2025(),
        }
    )
    with serving(state):
        yield state


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def zip_downloads(portal: Portal) -> list[str]:
    return [path for path, _ in portal.requests if path.endswith(".zip")]


def test_fetch_resolves_downloads_unpacks_and_records_checksums(portal, tmp_path):
    manifest = fetch_years([2024, 2025], tmp_path, api_url=portal.api, backoff_s=0)
    assert sorted(p.name for p in (tmp_path / "2024").iterdir()) == ["Bike share ridership 2024-08.csv"]
    assert sorted(p.name for p in (tmp_path / "2025").iterdir()) == [
        "Bike share ridership 2025-01.csv",
        "Bike share ridership 2025-02.csv",  # from the ZIP inside the ZIP
    ]
    entry = manifest["years"]["2025"]
    assert entry["zip_sha256"] == sha256(portal.files["/dl/bikeshare-ridership-2025.zip"])
    csv_path = tmp_path / "2025" / "Bike share ridership 2025-01.csv"
    assert entry["files"]["Bike share ridership 2025-01.csv"] == sha256(csv_path.read_bytes())
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert "/dl/2024.xlsx" not in [path for path, _ in portal.requests]
    summary = preprocess(str(tmp_path), str(tmp_path / "out" / "trips.parquet"))
    assert (summary.rows_in, summary.by_era) == (
        15,
        {"2024_model": 6, "2025": 9},
    )  # ZIPs not read twice


def test_a_broken_download_is_retried_and_resumed_with_a_range_request(portal, tmp_path):
    path = "/dl/bikeshare-ridership-2025.zip"
    portal.faults[path] = ["503", "cut"]
    manifest = fetch_years([2025], tmp_path, api_url=portal.api, backoff_s=0)
    half = len(portal.files[path]) // 2
    assert [r for p, r in portal.requests if p == path] == [None, None, f"bytes={half}-"]
    assert manifest["years"]["2025"]["zip_sha256"] == sha256(portal.files[path])
    assert not list((tmp_path / ".downloads").glob("*.part"))


def test_a_second_run_downloads_nothing_when_the_digest_matches(portal, tmp_path):
    fetch_years([2025], tmp_path, api_url=portal.api, backoff_s=0)
    portal.requests.clear()
    fetch_years([2025], tmp_path, api_url=portal.api, backoff_s=0)
    assert zip_downloads(portal) == []
    (tmp_path / ".downloads" / "bikeshare-ridership-2025.zip").write_bytes(b"corrupt")
    fetch_years([2025], tmp_path, api_url=portal.api, backoff_s=0)
    assert len(zip_downloads(portal)) == 1


def test_a_year_the_portal_does_not_list_is_a_user_error(portal, tmp_path):
    with pytest.raises(UserError, match="no ZIP named bikeshare-ridership-2030"):
        fetch_years([2030], tmp_path, api_url=portal.api, backoff_s=0)


def test_not_found_is_not_retried_and_persistent_503_gives_up_after_the_attempts(portal, tmp_path):
    with pytest.raises(UserError, match="HTTP 404"):
        fetch_years([2025], tmp_path, api_url=f"{portal.url}/nothing", backoff_s=0)
    assert portal.requests == [("/nothing", None)]
    portal.faults["/dl/bikeshare-ridership-2025.zip"] = ["503"] * 3
    with pytest.raises(UserError, match="after 3 attempts"):
        fetch_years([2025], tmp_path, api_url=portal.api, backoff_s=0, attempts=3)


def test_retries_wait_exponentially_up_to_the_cap_then_fail_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("time.sleep", waits.append)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("HTTP 503")
        return "done"

    downloader = Downloader(attempts=5, backoff_s=1.0, max_backoff_s=3.0)
    assert downloader.retrying("http://x/a.zip", flaky) == "done"
    assert waits == [1.0, 2.0]
    waits.clear()
    with pytest.raises(UserError) as error:
        downloader.retrying("http://x/a.zip", lambda: (_ for _ in ()).throw(TransientError("HTTP 503")))
    assert str(error.value) == "Download of http://x/a.zip failed after 5 attempts (HTTP 503)."
    assert waits == [1.0, 2.0, 3.0, 3.0]


def test_cli_prints_a_summary_and_exits_2_with_one_line_on_a_user_error(portal, tmp_path):
    command = [
        sys.executable,
        "-m",
        "models",
        "fetch",
        "--dest",
        str(tmp_path),
        "--api-url",
        portal.api,
        "--years",
    ]
    done = subprocess.run(
        [*command, "2025"], cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["years"]["2025"]["files"] == 2
    failed = subprocess.run(
        [*command, "2030"], cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in failed.stderr


def test_a_download_that_does_not_match_the_portals_hash_is_quarantined(portal, tmp_path):
    path = "/dl/bikeshare-ridership-2025.zip"
    listed = portal.package()["result"]["resources"]
    portal.resources = [{**r, "hash": "sha256:" + "0" * 64} if r["url"].endswith(path) else r for r in listed]
    with pytest.raises(UserError, match=r"does not match the portal's hash sha256:0{64} \(got sha256:"):
        fetch_years([2025], tmp_path, api_url=portal.api, backoff_s=0)
    assert not (tmp_path / "2025").exists()
    assert not (tmp_path / ".downloads" / "bikeshare-ridership-2025.zip").exists()
    quarantined = tmp_path / ".downloads" / "bikeshare-ridership-2025.zip.hash-mismatch"
    assert quarantined.read_bytes() == portal.files[path]
    portal.resources = [
        {**r, "hash": sha256(portal.files[path])} if r["url"].endswith(path) else r for r in listed
    ]
    manifest = fetch_years([2025], tmp_path, api_url=portal.api, backoff_s=0)
    assert manifest["years"]["2025"]["zip_sha256"] == sha256(portal.files[path])
