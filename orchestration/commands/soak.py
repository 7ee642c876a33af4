"""``make soak``: the simulated publication of ``make simulate-year`` under a seeded schedule of faults.

    agent/.venv/bin/python -m orchestration soak --seed 30 --months 3 --faults 6 [--outage-scale 0.2]

The schedule is drawn from ``random.Random(seed)`` (same seed, same schedule) and printed first. The
months run from a January to 2025 at the latest (24: 2024-01..2025-12; ``soak_periods``). Each
month is published by the fake portal (``orchestration.commands.simulate``) and ingested; then the
month's faults are injected in order, each ``delay_s`` after the ingest ended, by the PIDs and ports the
stack recorded in its state folder (``stack.processes``), never by name; then the command waits until
the month's runs settle. A month whose pipeline runs all ended without completing is run once more
(what an operator does; the fault table says so). A stopped server is started again with the settings
the soak runs with (``make up``'s): run it with the stack's own bucket. The notifications go to a
receiver of the soak's own while it runs (the operator's settings are saved back at the end). At the end
the invariants (``orchestration.commands.soak_checks``) are checked and printed; exit 1 when one fails.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.core.errors import UserError

KINDS = (
    "worker-kill",  # SIGKILL of the background worker, then `worker start`
    "flow-run-kill",  # SIGKILL of the worker's flow-run process (to-bikes-engine) mid-task
    "prefect-outage",  # the Prefect server stopped, then started
    "mlflow-outage",  # the MLflow server stopped, then started
    "s3-outage",  # s3rver stopped, then started
    "double-trigger",  # two pipeline runs of the month started at once
    "score-race",  # `python -m orchestration score` for the month while the automation works
    "garbage-raw",  # the month's raw file replaced by garbage and ingested, then the right file again
    "republish",  # the month's year published again with 1% of its trips' labels corrected, ingested
)
OUTAGE_S = {"prefect-outage": (60.0, 200.0), "mlflow-outage": (30.0, 90.0), "s3-outage": (30.0, 30.0)}
SERVER_OF = {"prefect-outage": "prefect", "mlflow-outage": "mlflow", "s3-outage": "s3"}
DELAY_S = (0.0, 20.0)  # after the month's ingest ended
MAX_FAULTS_PER_MONTH = 4
MAX_MONTHS = 24  # the simulated portal's 2024 and 2025 (``simulate.generate_periods``)
FIND_PROCESS_S = 90.0  # how long a flow-run kill looks for a flow-run process
COMMAND_TIMEOUT_S = 900.0
GARBAGE = b"\x00\x01 this is not a CSV \xff\xfe\n" * 64
REPUBLISH_SHARE = 0.01  # of each published month's labelled trips, by a "republish" fault
LABEL = re.compile(rb"(?m),(Member|Casual),([^,\r\n]*)(?=\r?$)")  # User_Type, then the last column


@dataclass(frozen=True)
class Fault:
    month: int
    kind: str
    delay_s: float
    duration_s: float = 0.0


def draw_schedule(seed: int, months: int, faults: int, outage_scale: float = 1.0) -> list[Fault]:
    """``faults`` faults over months 1..``months``, from ``random.Random(seed)`` only; bounded."""
    if not 1 <= months <= MAX_MONTHS:
        raise UserError(f"MONTHS={months} is out of range; give 1..{MAX_MONTHS}.")
    if not 0 <= faults <= MAX_FAULTS_PER_MONTH * months:
        raise UserError(
            f"FAULTS={faults} is out of range; give 0..{MAX_FAULTS_PER_MONTH * months} for {months}."
        )
    if not 0 < outage_scale <= 1:
        raise UserError(f"--outage-scale {outage_scale} is out of range; give more than 0 and at most 1.")
    rng = random.Random(seed)  # noqa: S311 (a replayable schedule, not a secret)
    drawn = []
    for _ in range(faults):
        kind, month = rng.choice(KINDS), rng.randint(1, months)
        low, high = OUTAGE_S.get(kind, (0.0, 0.0))
        duration = round(rng.uniform(low, high) * outage_scale, 1)
        drawn.append(Fault(month, kind, round(rng.uniform(*DELAY_S), 1), duration))
    return sorted(drawn, key=lambda f: (f.month, f.delay_s, f.kind))


def soak_periods(months: int) -> list[tuple[int, int]]:
    """The soak's (year, month)s, oldest first: ``months`` of them from a January, ending in 2025 at the
    latest (3: 2025-01..2025-03; 24: 2024-01..2025-12). A fault's ``month`` is its 1-based index here."""
    from orchestration.commands.simulate import YEAR

    first = YEAR - (months - 1) // 12
    return [(first + index // 12, index % 12 + 1) for index in range(months)]


def period_name(periods: list[tuple[int, int]], index: int) -> str:
    year, month = periods[index - 1]
    return f"{year}-{month:02d}"


def render_schedule(seed: int, schedule: list[Fault], periods: list[tuple[int, int]]) -> str:
    lines = [
        f"fault schedule of seed {seed}: {len(schedule)} fault(s)",
        "  # month    kind            delay_s  duration_s",
    ]
    for n, f in enumerate(schedule, start=1):
        lines.append(
            f"{n:3} {period_name(periods, f.month)}  {f.kind:15} {f.delay_s:7.1f}  {f.duration_s:10.1f}"
        )
    return "\n".join(lines)


@dataclass
class Soak:
    """What the faults need: settings, the fake portal and its data, what commands printed."""

    settings: Any
    portal: Any
    periods: list[tuple[int, int]]
    data: dict[tuple[int, int], bytes]
    say: Callable[[str], None]
    outputs: dict[str, str]
    background: list[Any]
    republished: list[tuple[int, Any]] = field(default_factory=list)  # (period index, since) to settle

    @property
    def state(self) -> Any:
        from stack.services import state_dir_of

        return state_dir_of(self.settings)

    def command(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m orchestration ARGS``; its output kept for the traceback check."""
        done = subprocess.run(
            [sys.executable, "-m", "orchestration", *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        self.outputs[f"{name} ({' '.join(args)})"] = done.stdout + done.stderr
        return done

    def period(self, index: int) -> tuple[int, int]:
        return self.periods[index - 1]

    def name(self, index: int) -> str:
        return period_name(self.periods, index)

    def publish(self, index: int, garbage: bool = False) -> None:
        """The year of the ``index``-th period, republished with its months up to that one."""
        from orchestration.commands.simulate import month_file

        year, month = self.period(index)
        entries = {month_file(m, year): self.data[year, m] for m in range(1, month + 1)}
        if garbage:
            entries[month_file(month, year)] = GARBAGE
        self.portal.publish(year, entries, f"{year}-{month:02d}-28T06:{time.time():.0f}")


def kill_worker(soak: Soak, fault: Fault) -> str:
    from stack.processes import read_pid, wait_gone

    record = read_pid(soak.state, "worker")
    if record is None or not record.leader_alive():
        return "no worker running; " + ensure_worker(soak)
    import os

    os.kill(record.pid, signal.SIGKILL)
    wait_gone(record, 10.0)
    return f"SIGKILL worker pid {record.pid}; " + ensure_worker(soak)


def ensure_worker(soak: Soak) -> str:
    """Start the background worker when its recorded process is gone."""
    from stack.processes import read_pid

    record = read_pid(soak.state, "worker")
    if record is not None and record.leader_alive():
        return "worker alive"
    done = soak.command("worker start", "worker", "start")
    return f"worker start exit {done.returncode}"


def find_flow_run_process(worker_pid: int) -> Any:
    """The first flow-run process under a worker: the child the worker started with the run's id in its
    environment (``PREFECT__FLOW_RUN_ID``), whatever its command (``to-bikes-engine``, ``prefect.engine``)."""
    import psutil

    from orchestration.flows.api_loss import ENGINE_FLOW_RUN_ENV

    for child in psutil.Process(worker_pid).children(recursive=True):
        try:
            if child.environ().get(ENGINE_FLOW_RUN_ENV):
                return child
        except psutil.Error:
            continue
    return None


def kill_flow_run(soak: Soak, fault: Fault) -> str:
    """SIGKILL the first flow-run process under the recorded worker."""
    import psutil

    from stack.processes import read_pid

    deadline = time.monotonic() + FIND_PROCESS_S
    while time.monotonic() < deadline:
        record = read_pid(soak.state, "worker")
        if record is not None and record.leader_alive():
            try:
                child = find_flow_run_process(record.pid)
                if child is not None:
                    child.kill()
                    return f"SIGKILL flow-run process pid {child.pid} (worker pid {record.pid})"
            except psutil.Error:
                pass
        time.sleep(0.5)
    return f"no flow-run process under the worker within {FIND_PROCESS_S:.0f} s: nothing killed"


def stop_server(soak: Soak, fault: Fault) -> str:
    """Stop the server by its pid record, wait ``duration_s``, start it again (``stack.control``)."""
    from stack.control import start_stack
    from stack.processes import read_pid, stop_record

    name = SERVER_OF[fault.kind]
    record = read_pid(soak.state, name)
    if record is None or not stop_record(name, record):
        return f"{name} was not running: nothing stopped"
    time.sleep(fault.duration_s)
    start_stack(soak.settings, (name,))
    return (
        f"{name} pid {record.pid} port {record.port} stopped {fault.duration_s:.0f} s, started; "
        + ensure_worker(soak)
    )


def double_trigger(soak: Soak, fault: Fault) -> str:
    from prefect.deployments import run_deployment

    from orchestration.commands.run import PIPELINE

    year, month = soak.period(fault.month)
    params = {"year": year, "month": month}
    runs: list[Any] = []
    threads = [
        threading.Thread(target=lambda: runs.append(run_deployment(PIPELINE, parameters=params, timeout=0)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return f"two {PIPELINE} runs started at once: {', '.join(r.name for r in runs)}"


def race_score(soak: Soak, fault: Fault) -> str:
    year, month = soak.period(fault.month)
    args = ("score", "--year", str(year), "--month", str(month))

    def score() -> None:
        soak.command("score race", *args)

    thread = threading.Thread(target=score)
    thread.start()
    soak.background.append(thread)
    return f"`{' '.join(args)}` started beside the automation"


def replace_with_garbage(soak: Soak, fault: Fault) -> str:
    """The month's file replaced by garbage and ingested (its month's event reruns it on the garbage),
    then the right file published again and ingested (and the month rerun on it)."""
    soak.publish(fault.month, garbage=True)
    first = ingest(soak)
    soak.publish(fault.month)
    second = ingest(soak)
    said = {True: "completed", False: "did not complete"}
    return f"garbage published, ingest {said[first]}; the right file again, ingest {said[second]}"


def correct_labels(data: bytes, share: float, rng: random.Random) -> tuple[bytes, int]:
    """``data`` with the label of ``share`` of its labelled trips flipped (at least one), text-level so
    every other byte stays; how many were flipped."""
    found = list(LABEL.finditer(data))
    chosen = {m.start() for m in rng.sample(found, min(len(found), max(1, round(share * len(found)))))}

    def flip(m: re.Match[bytes]) -> bytes:
        if m.start() not in chosen:
            return m.group(0)
        return b"," + (b"Casual" if m[1] == b"Member" else b"Member") + b"," + m[2]

    return LABEL.sub(flip, data), len(chosen)


def republish(soak: Soak, fault: Fault) -> str:
    """The year published again with 1% of the labels of every month so far corrected, and ingested: the
    changed months' events rerun their pipelines (settled before the next month: ``Soak.republished``)."""
    from datetime import UTC, datetime

    year, month = soak.period(fault.month)
    rng = random.Random(f"{year}-{month}-{fault.delay_s}")  # noqa: S311 (replayable, not a secret)
    flipped = 0
    for m in range(1, month + 1):
        soak.data[year, m], count = correct_labels(soak.data[year, m], REPUBLISH_SHARE, rng)
        flipped += count
    soak.publish(fault.month)
    since = datetime.now(UTC)
    done = ingest(soak)
    if done:
        soak.republished += [(index, since) for index in range(fault.month - month + 1, fault.month + 1)]
    return (
        f"{year} republished: {flipped} label(s) corrected in {year}-01..{year}-{month:02d}; "
        f"ingest {'completed' if done else 'did not complete'}"
    )


INJECT: dict[str, Callable[[Soak, Fault], str]] = {
    "worker-kill": kill_worker,
    "flow-run-kill": kill_flow_run,
    "prefect-outage": stop_server,
    "mlflow-outage": stop_server,
    "s3-outage": stop_server,
    "double-trigger": double_trigger,
    "score-race": race_score,
    "garbage-raw": replace_with_garbage,
    "republish": republish,
}


def ingest(soak: Soak) -> bool:
    from models.core.names import INGEST_DEPLOYMENT
    from orchestration.commands.runs import start_and_wait

    done, lines = start_and_wait(INGEST_DEPLOYMENT, {}, 600, say=soak.say)
    for line in lines:
        soak.say(f"  {line}")
    return done


def settle(soak: Soak, index: int, since: Any, quiet_s: float, deadline_s: float) -> dict[str, list]:
    """The ``index``-th period's runs once settled; {} when they did not within the deadline."""
    from orchestration.commands.simulate import wait_month

    year, month = soak.period(index)
    try:
        return wait_month(month, since, deadline_s, quiet_s, soak.say, year)
    except TimeoutError as exc:
        soak.say(f"  not settled: {exc}")
        return {}


def run_month(soak: Soak, index: int, faults: list[Fault], quiet_s: float, deadline_s: float) -> list[str]:
    """Publish and ingest the ``index``-th period, inject its faults, wait until its runs settle; one
    outcome per fault."""
    from datetime import UTC, datetime

    from orchestration.commands.run import PIPELINE
    from orchestration.commands.runs import start_and_wait
    from orchestration.commands.simulate import PIPELINE_FLOW

    outcomes: dict[int, str] = {}
    soak.publish(index)
    soak.say(f"{soak.name(index)} published")
    since = datetime.now(UTC)
    ingest(soak)
    start = time.monotonic()
    for fault in faults:
        time.sleep(max(0.0, start + fault.delay_s - time.monotonic()))
        outcomes[id(fault)] = INJECT[fault.kind](soak, fault)
        soak.say(f"  fault {fault.kind}: {outcomes[id(fault)]}")
    runs = settle(soak, index, since, quiet_s, deadline_s)
    pipelines = runs.get(PIPELINE_FLOW, [])
    if faults and pipelines and not any(state == "Completed" for _, state in pipelines):
        soak.say(f"  {soak.name(index)}: no pipeline run completed after its faults; running it once more")
        since = datetime.now(UTC)
        year, month = soak.period(index)
        start_and_wait(PIPELINE, {"year": year, "month": month}, 900, say=soak.say)
        settle(soak, index, since, quiet_s, deadline_s)
        outcomes = {key: value + "; month run once more" for key, value in outcomes.items()}
    while soak.republished:  # the months a republication changed, each rerun by its event
        settle(soak, *soak.republished.pop(0), quiet_s, deadline_s)
    return [outcomes[id(f)] for f in faults]


def run_soak(
    seed: int,
    months: int,
    faults: int,
    outage_scale: float = 1.0,
    rows: int = 6000,
    quiet_s: float = 30.0,
    deadline_s: float = 2400.0,  # past TO_BIKES_PENDING_SECONDS (1800): a run a killed worker left Pending
    say: Callable[[str], None] = print,
) -> bool:
    """The soak: schedule, months under faults, invariants. True when every invariant held."""
    import tempfile
    from datetime import UTC, datetime
    from http.server import ThreadingHTTPServer
    from pathlib import Path

    from models.core.settings import load_settings
    from orchestration.commands import simulate
    from orchestration.commands.soak_checks import render_checks
    from orchestration.commands.soak_reads import HELD_NOTICE_WAIT_S, NOTICE_WAIT_S, check_all

    schedule = draw_schedule(seed, months, faults, outage_scale)
    periods = soak_periods(months)
    say(render_schedule(seed, schedule, periods))
    began, clock = datetime.now(UTC), time.monotonic()
    portal = simulate.Publisher()
    server = ThreadingHTTPServer(("127.0.0.1", 0), simulate.publisher_handler(portal))
    portal.url = f"http://127.0.0.1:{server.server_address[1]}"
    hook = simulate.Receiver()  # the notifications (a failed run's message is checked)
    stops = [simulate.serve(server), simulate.serve(hook)]
    import os

    given = {name: os.environ.get(name) for name in ("TO_BIKES_CKAN_API_URL", "TO_BIKES_NOTIFY_URL")}
    os.environ["TO_BIKES_CKAN_API_URL"] = portal.api
    os.environ["TO_BIKES_NOTIFY_URL"] = hook.url
    said: list[str] = []

    def tell(line: str) -> None:
        said.append(line)
        say(line)

    try:
        settings = load_settings()
        simulate.save_blocks(settings, notify=True)
        with tempfile.TemporaryDirectory(prefix="to-bikes-soak-") as folder:
            data = simulate.generate_periods(Path(folder), periods, rows, seed=5)
            history = periods[0][0] - 1  # from the sample of the last year (generate_periods' folders)
            simulate.seed_previous_year(Path(folder, str(periods[-1][0])), settings, tell, history)
        soak = Soak(settings, portal, periods, data, tell, {}, [])
        done: list[tuple[Fault, str]] = []
        for index in range(1, months + 1):
            mine = [f for f in schedule if f.month == index]
            done += zip(mine, run_month(soak, index, mine, quiet_s, deadline_s), strict=True)
        for thread in soak.background:
            thread.join(timeout=COMMAND_TIMEOUT_S)
        say("faults injected:")
        for n, (fault, outcome) in enumerate(done, start=1):
            say(f"{n:3} {soak.name(fault.month)} {fault.kind:15} {outcome}")
        outputs = {"soak": "\n".join(said), **soak.outputs}
        restarted = any(fault.kind == "prefect-outage" for fault in schedule)
        notice_wait_s = HELD_NOTICE_WAIT_S if restarted else NOTICE_WAIT_S
        checks = check_all(settings, periods, began, outputs, hook, notice_wait_s)
    finally:
        for stop in stops:
            stop()
        for name, value in given.items():  # the operator's portal and notifications back (or none)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        simulate.save_blocks(load_settings(), notify=True)
    say(render_checks(checks))
    say(f"soak of seed {seed}: {months} month(s), {len(schedule)} fault(s), {time.monotonic() - clock:.0f} s")
    return all(check.passed for check in checks)
