"""``make simulate-year``'s parts without a stack: the fake portal the ingest reads, the collapsed month,
when a month's runs have settled."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from models.data.fetch import PACKAGE_ID
from orchestration.commands.simulate import (
    COLLAPSED_MEMBER_SHARE,
    PIPELINE_FLOW,
    SAMPLE_ROWS,
    SCORE_FLOW,
    Publisher,
    ThreadingHTTPServer,
    collapse_labels,
    generate_months,
    generate_periods,
    month_file,
    publisher_handler,
    serve,
    settled,
)

pytestmark = pytest.mark.unit


def member_share(data: bytes) -> float:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    return sum(row["User_Type"] == "Member" for row in rows) / len(rows)


def test_the_portal_lists_the_republished_zip_and_serves_it() -> None:
    portal = Publisher()
    server = ThreadingHTTPServer(("127.0.0.1", 0), publisher_handler(portal))
    portal.url = f"http://127.0.0.1:{server.server_address[1]}"
    stop = serve(server)
    try:
        portal.publish(2025, {"a.csv": b"x"}, "2025-01-28T06:00:00")
        portal.publish(2025, {"a.csv": b"x", "b.csv": b"y"}, "2025-02-28T06:00:00")
        with urllib.request.urlopen(f"{portal.api}?id={PACKAGE_ID}") as answer:
            (resource,) = json.load(answer)["result"]["resources"]
        assert resource["last_modified"] == "2025-02-28T06:00:00"
        with urllib.request.urlopen(resource["url"]) as answer:
            assert len(answer.read()) == resource["size"]
    finally:
        stop()


def test_the_collapsed_month_has_about_six_percent_members(tmp_path: Path) -> None:
    """Measured as the months table and the quality warning see it: after preprocessing, at the command's
    sizes (a month of about 270 trips, where per-trip coin flips came out at 9.4%)."""
    from models.data.preprocess import preprocess

    months = generate_months(tmp_path / "sample", 3, 3, SAMPLE_ROWS, 5)
    assert member_share(months[2]) > 0.5
    assert abs(member_share(months[3]) - COLLAPSED_MEMBER_SHARE) < 0.005
    assert collapse_labels(months[1]) == collapse_labels(months[1])  # the same every time
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / month_file(3)).write_bytes(months[3])
    summary = preprocess(f"{raw}/", str(tmp_path / "out" / "trips.parquet"), period="2025-03")
    assert abs(summary.label_share_by_month["2025-03"] - COLLAPSED_MEMBER_SHARE) < 0.005


def test_a_second_year_is_the_next_seeds_2025_a_year_earlier_and_preprocesses_as_its_own(
    tmp_path: Path,
) -> None:
    """The soak's 24 months: 2024-03 holds its own trips (dates in 2024, other ids than 2025-03's), every
    one of them kept or quarantined as the 2025 file it was made from; only the last period collapsed."""
    from models.data.preprocess import preprocess

    data = generate_periods(tmp_path / "sample", [(2024, 3), (2025, 3)], SAMPLE_ROWS, 5)
    source = generate_months(tmp_path / "next-seed", 3, 0, SAMPLE_ROWS, 6)[3]
    assert member_share(data[2024, 3]) > 0.5 and member_share(data[2025, 3]) < 0.1
    ids = {
        year: {row["Trip_Id"] for row in csv.DictReader(io.StringIO(data[year, 3].decode()))}
        for year in (2024, 2025)
    }
    assert not ids[2024] & ids[2025]
    summaries = {}
    for name, (year, raw_bytes) in {"shifted": (2024, data[2024, 3]), "source": (2025, source)}.items():
        raw = tmp_path / name
        raw.mkdir()
        (raw / month_file(3, year)).write_bytes(raw_bytes)
        out = str(tmp_path / f"{name}-out" / "trips.parquet")
        summaries[name] = preprocess(f"{raw}/", out, period=f"{year}-03")
    shifted, original = summaries["shifted"], summaries["source"]
    assert shifted.rows_out == original.rows_out > 200
    assert shifted.by_reason == original.by_reason and shifted.other_period == original.other_period


def run(state: str, ended_s_ago: float) -> SimpleNamespace:
    final = state in ("Completed", "Failed")
    end = datetime.now(UTC) - timedelta(seconds=ended_s_ago)
    return SimpleNamespace(
        state=SimpleNamespace(name=state, is_final=lambda: final, is_completed=lambda: state == "Completed"),
        end_time=end if final else None,
        created=end,
    )


def test_a_month_settles_when_its_pipeline_and_score_runs_ended_a_while_ago() -> None:
    assert not settled({PIPELINE_FLOW: [run("Completed", 60)], SCORE_FLOW: []}, 30)
    assert not settled({PIPELINE_FLOW: [run("Completed", 60)], SCORE_FLOW: [run("Running", 0)]}, 30)
    assert not settled({PIPELINE_FLOW: [run("Completed", 60)], SCORE_FLOW: [run("Completed", 5)]}, 30)
    assert settled({PIPELINE_FLOW: [run("Completed", 60)], SCORE_FLOW: [run("Completed", 40)]}, 30)
    assert settled({PIPELINE_FLOW: [run("Failed", 40)], SCORE_FLOW: []}, 30)  # no score follows a failure


def test_the_receiver_keeps_each_message_and_finds_those_that_mention_a_text() -> None:
    import json
    import urllib.request

    from orchestration.commands.simulate import Receiver, serve

    receiver = Receiver()
    stop = serve(receiver)
    try:
        for subject in ("champion is now version 2", "monitoring breach in 2025-12"):
            body = json.dumps({"subject": subject, "text": "Period: 2025-12"}).encode()
            request = urllib.request.Request(
                receiver.url, data=body, headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=10).close()
    finally:
        stop()
    assert receiver.about("breach") == ["monitoring breach in 2025-12\nPeriod: 2025-12"]
    assert len(receiver.about("2025-12")) == 2 and receiver.about("quality") == []
