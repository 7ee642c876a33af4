"""Start, find and stop the stack's server processes by the pid files this module writes.

Each server runs in a new session (its own process group), so stopping it ends the server and
every child it spawned, and nothing else: a pid is only signalled when its pid file also matches
the process start time recorded when it was launched (a recycled pid is left alone).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from models.core.errors import UserError
from stack.services import Service

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 20.0
KILL_WAIT_S = 10.0
MAX_LOG_BYTES = 20 * 1024 * 1024
LOCK_WAIT_S = 300.0
POLL_S = 0.25
PROBE_TIMEOUT_S = 2.0
PR_SET_PDEATHSIG = 1
# Set in every server's environment (and so inherited by its children) to recognise its processes
# even after the group leader died and left children behind.
MARKER_VARIABLE = "TO_BIKES_STACK_MEMBER"


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds: the group leader, its start time (to detect pid reuse), its port, and
    the marker every process of the server carries in its environment (``MARKER_VARIABLE``)."""

    pid: int
    start_ticks: int
    port: int
    marker: str = ""

    def leader_alive(self) -> bool:
        return process_start_ticks(self.pid) == self.start_ticks

    def members(self) -> list[int]:
        """The server's live processes: its whole group while the leader lives, else marked orphans."""
        members = group_members(self.pid)
        if self.leader_alive():
            return members
        return [pid for pid in members if self.marker and has_marker(pid, self.marker)]

    def is_alive(self) -> bool:
        return self.leader_alive() or bool(self.members())


def has_marker(pid: int, marker: str) -> bool:
    """True when the process's environment holds this stack's marker for one server."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER_VARIABLE}={marker}".encode() in environ.split(b"\0")


def process_start_ticks(pid: int) -> int | None:
    """Start time of a live (non-zombie) process in clock ticks since boot, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap our own child so it really goes away
        return None
    return int(fields[19])


def pid_path(state: Path, name: str) -> Path:
    return state / "run" / f"{name}.pid"


def log_path(state: Path, name: str) -> Path:
    return state / "logs" / f"{name}.log"


def read_pid(state: Path, name: str) -> PidRecord | None:
    """The pid record of a service, or None when there is no readable pid file."""
    path = pid_path(state, name)
    try:
        data = json.loads(path.read_text())
        marker = str(data.get("marker", ""))
        return PidRecord(int(data["pid"]), int(data["start_ticks"]), int(data["port"]), marker)
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def write_pid(state: Path, name: str, record: PidRecord) -> None:
    path = pid_path(state, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.__dict__))
    tmp.replace(path)


def is_port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (a trial bind; also catches a 0.0.0.0 listener).

    SO_REUSEADDR, as the servers themselves use, ignores TIME_WAIT leftovers of a server just
    stopped; Linux still refuses the bind while any socket listens on the port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def probe(service: Service) -> bool:
    """One health request (or the service's health command): True when the service answers as healthy."""
    if service.health_command is not None:
        try:
            done = subprocess.run(
                service.health_command, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0
    url = service.url + service.health_path
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:  # noqa: S310 (http on loopback)
            return 200 <= response.status < 300 or service.any_http_status_is_healthy
    except urllib.error.HTTPError:
        return service.any_http_status_is_healthy
    except (urllib.error.URLError, OSError):
        return False


def set_parent_death_signal() -> None:
    """In the child before exec: get SIGTERM when the parent dies (a killed test run leaks no server)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(service: Service, state: Path, die_with_parent: bool = False) -> PidRecord:
    """Launch a server in its own process group, output appended to its log; write its pid file.

    ``die_with_parent`` is for test fixtures, whose process outlives the servers; ``make up``
    exits right after starting them, so its servers must not follow it. Linux sends the signal
    when the *thread* that started the server ends: use it from the main thread only.
    """
    logfile = log_path(state, service.name)
    marker = f"{state.resolve()}/{service.name}"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    if logfile.exists() and logfile.stat().st_size > MAX_LOG_BYTES:
        logfile.replace(logfile.with_suffix(".log.1"))  # keep one previous log, not an ever-growing one
    with logfile.open("ab") as out:
        out.write(f"\n--- starting {service.name} on {service.url} at {time.ctime()} ---\n".encode())
        out.flush()
        process = subprocess.Popen(
            service.command,
            env={**service.env, MARKER_VARIABLE: marker},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=state,
            preexec_fn=set_parent_death_signal if die_with_parent else None,
            user=service.user,
        )
    ticks = process_start_ticks(process.pid) or 0
    record = PidRecord(process.pid, ticks, service.port, marker)
    write_pid(state, service.name, record)
    log.info("started %s (pid %s) on %s", service.name, process.pid, service.url)
    return record


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def signal_server(record: PidRecord, sig: signal.Signals) -> None:
    """Signal the server's process group, or only its marked orphans once the leader is gone."""
    if record.leader_alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, sig)
        return
    for pid in record.members():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_gone(record: PidRecord, timeout_s: float) -> bool:
    """Poll (bounded) until no process of the server is left; True when they are all gone."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        process_start_ticks(record.pid)  # reaps the leader if it is our own zombie child
        if not record.is_alive():
            return True
        time.sleep(POLL_S)
    return False


def stop_record(name: str, record: PidRecord, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM the server's processes, wait (bounded), then SIGKILL what is left. True if it ran."""
    if not record.is_alive():
        return False
    signal_server(record, signal.SIGTERM)
    if not wait_gone(record, timeout_s):
        log.warning("%s (pid %s) did not stop within %.0f s; sending SIGKILL", name, record.pid, timeout_s)
        signal_server(record, signal.SIGKILL)
        wait_gone(record, KILL_WAIT_S)
    return True


@contextlib.contextmanager
def state_lock(state: Path) -> Iterator[None]:
    """Hold the state folder's lock, so two `up`/`down` at once cannot overwrite each other's pid files."""
    path = state / "run" / "stack.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise UserError(f"another stack command holds {path}; let it finish.") from None
                time.sleep(POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tail_log(state: Path, name: str, lines: int = 20) -> str:
    """The last lines of a service's log (for error messages and `stack logs`)."""
    try:
        text = log_path(state, name).read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def port_in_use_error(service: Service) -> UserError:
    variable = f"TO_BIKES_{service.name.upper()}_PORT"
    return UserError(
        f"port {service.port} on {service.host} (for the {service.name} server) is already in use by another "
        f"process; stop it or choose another port with {variable}."
    )
