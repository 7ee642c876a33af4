"""``make agent``: the worker of agent/.venv for the selected pool type, polling the pool's work queues.

    agent/.venv/bin/python -m orchestration worker run          # foreground; Ctrl-C stops it
    agent/.venv/bin/python -m orchestration worker start|stop   # background, pid file (make worker-start)
    agent/.venv/bin/python -m orchestration worker resume       # make up: start it again if it was running
    agent/.venv/bin/python -m orchestration worker status       # online/offline, how many poll, pid
    agent/.venv/bin/python -m orchestration worker stacks       # where its flow runs are: stacks to its log

``TO_BIKES_WORK_POOL_TYPE`` (process by default; docker, kubernetes, ecs) picks the pool of prefect.yaml
and the worker type: a process worker runs each flow run as its subprocess; a docker worker starts
one container per flow run from the deployment's image (prefect-docker, needs a Docker engine); a
kubernetes or ecs worker submits a Job or a task to the cluster its credentials reach.
The worker starts in ``<state dir>/worker`` (no project code there), without ``PYTHONPATH``, so a
flow run can only import the code its ``pull`` step downloaded from S3. The background worker runs
in its own session and process group; its pid file ``<state dir>/run/worker.pid`` has the stack's
format (pid, start time, port 0), so ``stop`` (or the stack's ``make down``) ends exactly it. It polls
under ``stack.worker_status.background_worker_name`` (one row per machine, state folder and pool).
``start`` also leaves ``<state dir>/worker.wanted``: ``make down`` keeps it, so ``make up`` (``resume``)
brings the background worker back; an explicit ``stop`` removes it, and ``make up`` then says how to
start one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from models.core.errors import UserError
from models.core.settings import PROJECT_ROOT, Settings, load_settings
from stack.prefect_api import require_prefect_api as check_prefect_api
from stack.prefect_yaml import pool_name, read_pool_type, read_spec, read_work_queues
from stack.processes import PidRecord, process_start_time, read_pid, stop_record, write_pid
from stack.services import state_dir_of
from stack.worker_status import START_HINT, background_worker_name

log = logging.getLogger(__name__)

WORKER_NAME = "worker"
WANTED_MARKER = "worker.wanted"
STACKS_SIGNAL = signal.SIGUSR1  # to-bikes-engine and preloaded Dask workers write their stacks on it
STACKS_GAP_S = 0.5  # between two processes' signals: a dump takes milliseconds, so they do not interleave
DEFAULT_QUERY_SECONDS = "1"  # a local API takes it easily; Prefect Cloud users may raise it
ONLINE_TIMEOUT_S = 90.0
# Outlive a restart of the servers (prefect.yaml's job env carries the same values, for workers not
# started here). Prefect's client waits 2, 4, ... 2**n s between tries: 7 tries span about 4 minutes,
# so a 3-minute API outage is survived and a longer one ends in Prefect's error. MLflow's client
# (urllib3: 0, 4, 8, 16, 32 s) gives up on a dead server after about a minute, and after 30 s on a
# request a live one leaves unanswered, instead of 7 tries of 120 s.
OUTAGE_ENV = {
    "PREFECT_CLIENT_MAX_RETRIES": "7",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "TO_BIKES_MLFLOW_WAIT_SECONDS": "210",  # a restarting MLflow server: as long as API_OUTAGE_S
    # boto3 clients built without a retry config (prefect-aws's pull_from_s3, the code pull of every
    # flow run): standard retries over about a minute (jittered backoff up to 20 s) instead of legacy
    # mode's 5 tries in a few seconds, so a 30 s S3 restart does not crash the run (found by make soak).
    # models.core.s3 sets its own.
    "AWS_RETRY_MODE": "standard",
    "AWS_MAX_ATTEMPTS": "12",
}
POLL_S = 1.0
# The deployments' command, to-bikes-engine (waits for the API, then runs prefect.engine in its process).
ENGINE_BIN = PROJECT_ROOT / "agent" / "bin"


def selected_pool(settings: Settings, pool_type: str | None = None) -> tuple[str, str]:
    """(pool name, type): the settings' pool for process, prefect.yaml's pool of the type otherwise."""
    pool_type = read_pool_type(pool_type)
    return (settings.work_pool if pool_type == "process" else pool_name(pool_type, read_spec())), pool_type


def worker_command(pool: str, pool_type: str = "process", name: str | None = None) -> list[str]:
    """``prefect worker start`` of ``pool_type`` for the pool and every queue the deployments use."""
    queues = read_work_queues().get(pool, [])
    prefect = Path(sys.executable).parent / "prefect"
    command = [str(prefect), "worker", "start", "--pool", pool, "--type", pool_type]
    if name:
        command += ["--name", name]
    for queue in queues:
        command += ["--work-queue", queue]
    return command


def worker_env(settings: Settings) -> dict[str, str]:
    """The caller's environment without PYTHONPATH, with the API URL, polling every second by default.

    PREFECT_API_URL is always set: without it, Prefect would quietly start a throw-away server.
    Flow runs send heartbeats every TO_BIKES_HEARTBEAT_SECONDS, the setting the zombie automation
    (orchestration.deploy.automations) is built from, so a different Prefect value cannot make
    them disagree.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The deployments' `command` (to-bikes-engine) must be found, and run by this venv's python.
    path = [str(Path(sys.executable).parent), str(ENGINE_BIN), env.get("PATH", os.defpath)]
    env["PATH"] = os.pathsep.join(path)
    env.setdefault("PREFECT_API_URL", settings.prefect_api_url)
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", DEFAULT_QUERY_SECONDS)
    env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(settings.heartbeat_seconds)
    for name, value in OUTAGE_ENV.items():
        env.setdefault(name, value)
    return env


def worker_home(settings: Settings) -> Path:
    """The worker's working directory: inside the state folder, holding no project code."""
    home = state_dir_of(settings) / "worker"
    home.mkdir(parents=True, exist_ok=True)
    return home


def run_foreground(settings: Settings) -> int:
    """Replace this process by the worker, so Ctrl-C reaches it directly and it ends cleanly."""
    pool, pool_type = selected_pool(settings)
    command = worker_command(pool, pool_type)
    os.chdir(worker_home(settings))
    print(f"{pool_type} worker for pool {pool} at {settings.prefect_api_url}; Ctrl-C stops it", flush=True)
    os.execve(command[0], command, worker_env(settings))  # noqa: S606 (the worker replaces this process)
    return 0  # not reached


def default_sigint() -> None:
    """In the worker's child: SIGINT back to its default before exec.

    A job started in the background by a non-interactive shell (``cmd &``, nohup, a CI step) ignores
    SIGINT, and an ignored signal stays ignored across exec. Prefect's worker turns SIGTERM into SIGINT
    for itself, so with SIGINT ignored ``stop`` waited its full timeout and had to SIGKILL the worker.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_background(settings: Settings) -> str:
    """Start a worker in its own process group with a pid file; a live one is left running."""
    state = state_dir_of(settings)
    record = read_pid(state, WORKER_NAME)
    if record is not None and record.is_alive():
        return f"worker already running (pid {record.pid})"
    logfile = state / "logs" / "worker.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    pool, pool_type = selected_pool(settings)
    with logfile.open("ab") as out:
        process = subprocess.Popen(
            worker_command(pool, pool_type, background_worker_name(settings, pool)),
            cwd=worker_home(settings),
            env=worker_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=default_sigint,  # this CLI process runs no threads, so preexec_fn is safe
        )
    write_pid(state, WORKER_NAME, PidRecord(process.pid, process_start_time(process.pid) or 0.0, 0))
    try:
        wait_online(settings, started, process, logfile, pool)
    except BaseException:
        stop_background(settings)  # a start that failed leaves no worker behind
        raise
    (state / WANTED_MARKER).write_text(f"started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    return f"worker started (pid {process.pid}, log {logfile}, pid file {state / 'run' / 'worker.pid'})"


def read_pool_workers(client: Any, pool: str) -> list[Any]:
    """The pool's workers; none while the pool does not exist yet (the worker creates it at start)."""
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        return list(client.read_workers_for_work_pool(pool))
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code == 404:
            return []
        raise


def wait_online(
    settings: Settings, since: float, process: subprocess.Popen, logfile: Path, pool: str | None = None
) -> None:
    """Wait (bounded) until the pool lists a worker that sent a heartbeat after ``since``."""
    from prefect.client.orchestration import get_client

    pool = pool or settings.work_pool
    deadline = time.monotonic() + ONLINE_TIMEOUT_S
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise UserError(f"the worker exited at start (code {process.returncode}); see {logfile}.")
            workers = read_pool_workers(client, pool)
            if any(w.last_heartbeat_time and w.last_heartbeat_time.timestamp() >= since for w in workers):
                return
            time.sleep(POLL_S)
    raise UserError(f"no worker of pool {pool} came online in {ONLINE_TIMEOUT_S:.0f} s; see {logfile}.")


def stop_background(settings: Settings) -> str:
    """Stop the background worker named by the pid file (SIGTERM to its group, then SIGKILL)."""
    state = state_dir_of(settings)
    record = read_pid(state, WORKER_NAME)
    stopped = record is not None and stop_record(WORKER_NAME, record)
    (state / "run" / "worker.pid").unlink(missing_ok=True)
    (state / WANTED_MARKER).unlink(missing_ok=True)
    return f"worker stopped (pid {record.pid})" if stopped and record else "worker was not running"


def catches_signal(pid: int, signum: int) -> bool:
    """Whether process ``pid`` handles ``signum`` (Linux ``/proc/<pid>/status``, ``SigCgt``): only such a
    process may be sent SIGUSR1, whose default action ends it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) >> (signum - 1) & 1)


def signal_stack_writers(root_pid: int) -> list[int]:
    """SIGUSR1 to each process under ``root_pid`` that handles it (``to-bikes-engine``, Dask workers
    preloaded with ``orchestration.flows.dask_workers``), one after another so that their stacks do not
    interleave in the shared log: the pids signalled. The others are left alone."""
    import psutil

    signalled = []
    for child in psutil.Process(root_pid).children(recursive=True):
        if catches_signal(child.pid, STACKS_SIGNAL):
            if signalled:
                time.sleep(STACKS_GAP_S)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, STACKS_SIGNAL)
                signalled.append(child.pid)
    return signalled


def write_stacks(settings: Settings) -> str:
    """``worker stacks``: every flow-run process of the background worker (and its Dask workers) writes
    its threads' stacks to the worker's log, then goes on: where a run that seems stuck is waiting."""
    state = state_dir_of(settings)
    record = read_pid(state, WORKER_NAME)
    if record is None or not record.is_alive():
        pid_file = state / "run" / "worker.pid"
        raise UserError(f"no background worker is running (pid file {pid_file}); {START_HINT}.")
    logfile = state / "logs" / "worker.log"
    pids = signal_stack_writers(record.pid)
    if not pids:
        return (
            f"no flow-run process under the worker (pid {record.pid}): no stacks written to {logfile} "
            "(the runs of a docker, kubernetes or ecs pool are not its processes)"
        )
    return f"stacks of {len(pids)} process(es) (pids {', '.join(map(str, pids))}) written to {logfile}"


def resume_background(settings: Settings) -> str:
    """``make up``: start the background worker again when ``make demo`` had started one."""
    if not (state_dir_of(settings) / WANTED_MARKER).exists():
        before = "no background worker was running before `make down`"
        return f"{WORKER_NAME:8} not started: {before}; {START_HINT}"
    return start_background(settings)


def run_worker_action(action: str) -> int:
    """``run`` in the foreground, ``start``/``stop`` a background worker, ``resume`` it after make up."""
    settings = load_settings()
    # Prefect clients in this process use the configured API, never a throw-away local server.
    os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url)
    if action not in {"stop", "stacks"}:
        check_prefect_api(settings)
    if action == "run":
        return run_foreground(settings)
    actions = {
        "start": start_background,
        "stop": stop_background,
        "resume": resume_background,
        "stacks": write_stacks,
    }
    print(actions[action](settings))
    return 0
