"""``make simulate-year``: a time-compressed 2025 on the local stack, one month at a time, no command typed.

    agent/.venv/bin/python -m orchestration simulate-year [--months 12] [--collapse MONTH] [--receiver]

A fake CKAN portal on 127.0.0.1 (``Publisher``: ``package_show`` and the files, never the internet)
publishes the generated sample's 2025 (``models.sample``) one month at a time: each tick republishes
the yearly ZIP with one more month, as the City does, and starts the ``ingest/scheduled-daily``
deployment (the daily run, compressed) through ``orchestration.commands.runs``. From there the
project's automations do the rest: the month's ``to-bikes.month.changed`` event starts its pipeline
run (preprocess, train on the months before, gate on the month), its completion starts the score run
(monitoring), a breach starts a retrain. The command only waits until every pipeline and score run of
that month is final and nothing new has started for ``QUIET_S`` seconds, then publishes the next month.

One month (``--collapse``, default the last) has its labels collapsed to about 6% members: its
preprocessing raises the data-quality warning, its scoring breaches, the breach retrains, and each
sends one notification when ``TO_BIKES_NOTIFY_URL`` is set (``--receiver`` starts a local receiver,
points the notification block at it and prints what it got). Before the first month, 2024 (the year
the portal had already) is put under ``raw/2024/`` and preprocessed in this process, so January trains
on it. It ends with the months table (``make months``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from models.core.names import INGEST_DEPLOYMENT
from models.core.settings import Settings

YEAR = 2025
PIPELINE_FLOW = "to-bikes-pipeline"
SCORE_FLOW = "score"
COLLAPSED_MEMBER_SHARE = 0.06
QUIET_S = 30.0  # nothing new for this long after the month's last run ended: the automations are done
MONTH_DEADLINE_S = 1200.0  # a month's pipeline, score and retrain on a loaded machine
POLL_S = 3.0
SAMPLE_ROWS = 6000
YEAR_ID_OFFSET = 5_000_000  # trip ids of a year made from the next (generate_periods) stay apart


def month_file(month: int, year: int = YEAR) -> str:
    return f"Bike share ridership {year}-{month:02d}.csv"


# --- the fake portal -------------------------------------------------------------------------


@dataclass
class Publisher:
    """The City's portal as far as the ingest reads it: one yearly ZIP resource, republished per month."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    resources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"{self.url}/api/3/action/package_show"

    def publish(self, year: int, entries: dict[str, bytes], version: str) -> None:
        """The year's ZIP holding ``entries`` under a new URL (the old one is no longer listed)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
        path = f"/dl/{version}/bikeshare-ridership-{year}.zip"
        self.files[path] = buffer.getvalue()
        entry = {
            "name": f"bikeshare-ridership-{year}",
            "format": "ZIP",
            "url": f"{self.url}{path}",
            "last_modified": version,
            "size": len(self.files[path]),
        }
        self.resources = [r for r in self.resources if r["name"] != entry["name"]] + [entry]


def publisher_handler(portal: Publisher) -> type[BaseHTTPRequestHandler]:
    from models.data.fetch import PACKAGE_ID

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path.endswith("/package_show"):
                body = {"success": True, "result": {"name": PACKAGE_ID, "resources": portal.resources}}
                self.reply(json.dumps(body).encode())
            elif path in portal.files:
                self.reply(portal.files[path])
            else:
                self.send_error(404)

        def reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class Receiver(ThreadingHTTPServer):
    """A notification receiver on 127.0.0.1: keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def about(self, text: str) -> list[str]:
        """The messages received so far (subject and text) that mention ``text``."""
        with self.lock:
            found = [f"{m.get('subject')}\n{m.get('text')}" for m in self.messages]
        return [message for message in found if text in message]


class ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.messages.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def serve(server: ThreadingHTTPServer) -> Callable[[], None]:
    """Serve in a daemon thread; returns the stop function."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    return stop


# --- the data --------------------------------------------------------------------------------


def collapse_labels(data: bytes, share: float = COLLAPSED_MEMBER_SHARE, seed: int = 27) -> bytes:
    """The month's CSV with ``User_Type`` Member for ``share`` of the labelled trips (rounded), Casual
    otherwise: exactly that many rows drawn without replacement. A coin flip per trip made a month of
    about 270 trips 9.5% members (a binomial draw: 6% +- 1.4 points)."""
    rng = np.random.default_rng(seed)
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    rows = [row for row in reader if None not in row and all(value is not None for value in row.values())]
    labelled = [index for index, row in enumerate(rows) if row.get("User_Type") in ("Member", "Casual")]
    labelled_set = set(labelled)
    members = set(rng.choice(labelled, size=round(share * len(labelled)), replace=False).tolist())
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for index, row in enumerate(rows):
        if index in labelled_set:
            row["User_Type"] = "Member" if index in members else "Casual"
        writer.writerow(row)
    return out.getvalue().encode()


def generate_months(folder: Path, months: int, collapse: int, rows: int, seed: int) -> dict[int, bytes]:
    """The sample's 2025 months 1..``months`` (raw CSV bytes), month ``collapse`` collapsed (0: none)."""
    from models.sample.generate import generate_sample

    generate_sample(folder, seed=seed, rows=rows)
    found = {m: (folder / str(YEAR) / month_file(m)).read_bytes() for m in range(1, months + 1)}
    if collapse:
        found[collapse] = collapse_labels(found[collapse])
    return found


def shift_year_back(data: bytes, id_offset: int) -> bytes:
    """A 2025 month file as the same month a year earlier: every ISO date's year minus one, every trip id
    minus ``id_offset``. Text-level, so the sample's dirty rows stay exactly as dirty."""
    text = re.sub(rb"\b(20\d\d)(-\d\d-\d\d)", lambda m: b"%d%s" % (int(m[1]) - 1, m[2]), data)
    return re.sub(rb"(?m)^(\d+),", lambda m: b"%d," % (int(m[1]) - id_offset), text)


def generate_periods(
    folder: Path, periods: list[tuple[int, int]], rows: int, seed: int
) -> dict[tuple[int, int], bytes]:
    """Raw CSV bytes of each (year, month) in ``periods`` (2024 and 2025 at most), the last collapsed.

    2025 is the sample's; 2024 is the sample's 2025 of the next seed a year earlier (``shift_year_back``:
    the sample's own 2024 has three months only)."""
    last = periods[-1]
    found: dict[tuple[int, int], bytes] = {}
    for year in sorted({year for year, _ in periods}):
        months = max(month for y, month in periods if y == year)
        shift = YEAR - year
        if shift not in (0, 1):
            raise ValueError(f"the simulated portal has {YEAR - 1} and {YEAR}, not {year}")
        made = generate_months(
            folder / str(year), months, last[1] if year == last[0] else 0, rows, seed + shift
        )
        for month, data in made.items():
            found[year, month] = shift_year_back(data, YEAR_ID_OFFSET) if shift else data
    return found


def seed_previous_year(
    folder: Path, settings: Settings, say: Callable[[str], None], year: int = YEAR - 1
) -> None:
    """The sample's ``year`` (2024) under ``raw/<year>/`` and its processed output (January trains on it)."""
    from models.core import s3
    from models.core.names import DEFAULT_MIN_DURATION_S
    from models.data.preprocess import preprocess

    previous = str(year)
    output = settings.s3_uri(settings.processed_prefix, previous, "trips.parquet")
    raw = settings.s3_uri(settings.raw_prefix, previous) + "/"
    bucket, prefix = s3.split_s3_uri(raw)
    client = s3.s3_client(settings)
    for path in sorted((folder / previous).iterdir()):
        client.upload_file(str(path), bucket, f"{prefix}{path.name}")
    summary = preprocess(
        raw, output, period=previous, min_duration_s=DEFAULT_MIN_DURATION_S, settings=settings
    )
    say(f"history: {previous} under {raw} preprocessed ({summary.rows_out} rows) -> {output}")


# --- the runs --------------------------------------------------------------------------------


def month_runs(client: Any, month: int, since: Any, year: int = YEAR) -> dict[str, list[Any]]:
    """This month's pipeline and score flow runs created since ``since``, by flow name."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter
    from prefect.client.schemas.sorting import FlowRunSort

    found: dict[str, list[Any]] = {}
    for flow in (PIPELINE_FLOW, SCORE_FLOW):
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow])),
            flow_run_filter=FlowRunFilter(),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=200,
        )
        found[flow] = [
            r
            for r in runs
            if r.created >= since
            and str(r.parameters.get("year")) == str(year)
            and str(r.parameters.get("month")) == str(month)
        ]
    return found


def settled(runs: dict[str, list[Any]], quiet_s: float) -> bool:
    """A pipeline run and a score run (none follows a failed pipeline), all final, the last one ended at
    least ``quiet_s`` ago (time for an automation to start another: a breach's retrain)."""
    from datetime import UTC, datetime

    every = [r for flow_runs in runs.values() for r in flow_runs]
    if not runs[PIPELINE_FLOW] or any(r.state is None or not r.state.is_final() for r in every):
        return False
    if not runs[SCORE_FLOW] and all(r.state.is_completed() for r in runs[PIPELINE_FLOW]):
        return False
    ended = max((r.end_time or r.created) for r in every)
    return (datetime.now(UTC) - ended).total_seconds() >= quiet_s


def wait_month(
    month: int, since: Any, deadline_s: float, quiet_s: float, say: Callable[[str], None], year: int = YEAR
) -> dict:
    """Wait until the month's runs settle; what they were (flow -> [(name, state)])."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + deadline_s
    said = ""
    with get_client(sync_client=True) as client:
        while True:
            runs = month_runs(client, month, since, year)
            line = ", ".join(
                f"{flow} {r.name} {r.state.name if r.state else 'Scheduled'}"
                for flow, flow_runs in runs.items()
                for r in sorted(flow_runs, key=lambda r: r.created)
            )
            if line != said:
                say(f"  {year}-{month:02d}: {line or 'waiting for the automations'}")
                said = line
            if settled(runs, quiet_s):
                return {flow: [(r.name, r.state.name) for r in rs] for flow, rs in runs.items()}
            if time.monotonic() > deadline:
                raise TimeoutError(f"{year}-{month:02d}: runs not settled within {deadline_s:.0f} s: {line}")
            time.sleep(POLL_S)


def save_blocks(settings: Settings, notify: bool) -> None:
    """The config block naming the fake portal (``make blocks``); the notification automations too."""
    from orchestration.deploy.blocks import save_all
    from orchestration.deploy.notifications import save_notices

    for _ in save_all(settings):
        pass
    if notify:
        for _ in save_notices(settings):
            pass


def simulate_year(
    months: int = 12,
    collapse: int | None = None,
    receiver: bool = False,
    rows: int = SAMPLE_ROWS,
    seed: int = 5,
    quiet_s: float = QUIET_S,
    deadline_s: float = MONTH_DEADLINE_S,
    say: Callable[[str], None] = print,
) -> bool:
    """Publish ``months`` months one by one and let the automations work; True when every month's runs
    Completed. Ends with the months table."""
    from datetime import UTC, datetime

    from models.core.settings import load_settings
    from orchestration.commands.months import render_months
    from orchestration.commands.runs import start_and_wait
    from orchestration.flows.months import build_months_table

    collapse = months if collapse is None else collapse
    portal = Publisher()
    portal_server = ThreadingHTTPServer(("127.0.0.1", 0), publisher_handler(portal))
    portal.url = f"http://127.0.0.1:{portal_server.server_address[1]}"
    stops = [serve(portal_server)]
    hook = Receiver() if receiver else None
    if hook is not None:
        stops.append(serve(hook))
        os.environ["TO_BIKES_NOTIFY_URL"] = hook.url
    os.environ["TO_BIKES_CKAN_API_URL"] = portal.api
    ok = True
    try:
        settings = load_settings()
        save_blocks(settings, notify=hook is not None)
        say(f"fake portal: {portal.api}; bucket {settings.bucket}; months 1..{months}, collapsed {collapse}")
        with tempfile.TemporaryDirectory(prefix="to-bikes-year-") as folder:
            data = generate_months(Path(folder), months, collapse, rows, seed)
            seed_previous_year(Path(folder), settings, say)
        for month in range(1, months + 1):
            entries = {month_file(m): data[m] for m in range(1, month + 1)}
            portal.publish(YEAR, entries, f"{YEAR}-{month:02d}-28T06:00:00")
            say(f"{YEAR}-{month:02d} published" + (" (labels collapsed)" if month == collapse else ""))
            since = datetime.now(UTC)
            done, lines = start_and_wait(INGEST_DEPLOYMENT, {}, 600, say=say)
            for line in lines:
                say(f"  {line}")
            if not done:
                ok = False
                continue
            runs = wait_month(month, since, deadline_s, quiet_s, say)
            ok = ok and all(state == "Completed" for rs in runs.values() for _, state in rs)
        say(render_months(build_months_table(load_settings())))
        if hook is not None:
            with hook.lock:
                messages = list(hook.messages)
            say(f"notifications received: {len(messages)}")
            for message in messages:
                say(f"---- {message.get('subject')}\n{message.get('text')}")
    finally:
        for stop in stops:
            stop()
    return ok
