"""Bring the stack up, down, and report its state; shared by ``stack.cli`` and the test fixtures.

``start_stack`` checks every port before it launches anything, launches the missing servers
concurrently (Prefect and MLflow each take 12-18 s on a first start) and waits for all of them
in one loop bounded by ``settings.stack_timeout_s``. Starting twice is harmless: a server whose
pid file matches a live process is left running.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from models.core.errors import UserError
from models.core.settings import Settings
from stack.processes import (
    POLL_S,
    PidRecord,
    is_port_free,
    pid_path,
    port_in_use_error,
    probe,
    read_pid,
    spawn,
    state_lock,
    stop_record,
)
from stack.services import POSTGRES, SERVICE_NAMES, Service, build_services, state_dir_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceState:
    """One line of ``status``: a service, its URL and whether it runs and answers."""

    name: str
    url: str
    pid: int | None
    healthy: bool

    def describe(self) -> str:
        if self.pid is None:
            return f"{self.name:8} stopped    {self.url}"
        state = "running" if self.healthy else "unhealthy"
        return f"{self.name:8} {state:10} {self.url}  pid {self.pid}"


def live_record(state: Path, service: Service) -> PidRecord | None:
    """The pid record of a running service. A stale pid file is removed; processes left behind by a
    server whose leader died are stopped first, so that a new start finds its port free."""
    record = read_pid(state, service.name)
    if record is None:
        return None
    if record.leader_alive():
        return record
    if stop_record(service.name, record):
        log.warning("stopped what the %s server (pid %s, exited) left behind", service.name, record.pid)
    pid_path(state, service.name).unlink(missing_ok=True)
    return None


def check_ports(state: Path, services: list[Service]) -> list[Service]:
    """The services that need starting; raises if one's port is taken by something else."""
    ports = [s.port for s in services]
    duplicate = next((p for p in ports if ports.count(p) > 1), None)
    if duplicate is not None:
        raise UserError(
            f"port {duplicate} is configured for two servers; give each TO_BIKES_*_PORT its own port."
        )
    missing = []
    for service in services:
        record = live_record(state, service)
        if record is not None and record.port != service.port:
            raise UserError(
                f"the {service.name} server already runs on port {record.port} (pid {record.pid}), not "
                f"{service.port}; run `make down` before changing its port."
            )
        if record is None:
            if not is_port_free(service.host, service.port):
                raise port_in_use_error(service)
            missing.append(service)
    return missing


def wait_healthy(state: Path, services: list[Service], timeout_s: float) -> None:
    """Poll every service until it answers (bounded); raise naming the first one that died or hung."""
    pending = list(services)
    deadline = time.monotonic() + timeout_s
    while pending:
        for service in list(pending):
            if probe(service):
                pending.remove(service)
                log.info("%s is up on %s", service.name, service.url)
            elif live_record(state, service) is None:
                raise UserError(
                    f"the {service.name} server exited while starting on {service.url}; read why in "
                    f"{state / 'logs' / (service.name + '.log')} (or `make logs`)."
                )
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            raise UserError(
                f"{names} did not answer within {timeout_s:.0f} s; see `make logs` ({state / 'logs'})."
            )
        if pending:
            time.sleep(POLL_S)


def start_stack(
    settings: Settings, names: tuple[str, ...] = SERVICE_NAMES, die_with_parent: bool = False
) -> list[ServiceState]:
    """Start the named servers that are not running yet and wait until all of them answer."""
    services = build_services(settings, names)
    state = state_dir_of(settings)
    with state_lock(state):
        missing = check_ports(state, services)
        try:
            start_database(settings, state, [s for s in missing if s.name == POSTGRES], die_with_parent)
            for service in missing:
                if service.name != POSTGRES:
                    spawn(service, state, die_with_parent)
            wait_healthy(state, services, settings.stack_timeout_s)
        except UserError:
            stop_services(state, missing)
            raise
    return stack_status(settings, names)


def start_database(settings: Settings, state: Path, services: list[Service], die_with_parent: bool) -> None:
    """PostgreSQL first (its cluster made on the first start): the Prefect server migrates it on start."""
    from stack.postgres import ensure_cluster

    for service in services:
        ensure_cluster(settings, state)
        spawn(service, state, die_with_parent)
        wait_healthy(state, [service], settings.stack_timeout_s)


def stop_services(state: Path, services: list[Service]) -> list[str]:
    """Stop the given services (reverse start order) by their pid files; one message each."""
    messages = []
    for service in reversed(services):
        record = read_pid(state, service.name)
        if record is not None and stop_record(service.name, record):
            messages.append(f"{service.name:8} stopped (pid {record.pid})")
        else:
            messages.append(f"{service.name:8} was not running")
        pid_path(state, service.name).unlink(missing_ok=True)
    return messages


def stop_clients(state: Path, names: tuple[str, ...]) -> list[str]:
    """Stop other processes the project recorded in the stack's pid folder (e.g. the demo worker).

    They depend on the servers, so they go first; each is ended only if its recorded start time
    still matches, exactly as for the servers.
    """
    messages = []
    for path in sorted((state / "run").glob("*.pid")):
        name = path.stem
        if name in names:
            continue
        record = read_pid(state, name)
        if record is not None and stop_record(name, record):
            messages.append(f"{name:8} stopped (pid {record.pid})")
        path.unlink(missing_ok=True)
    return messages


def stop_stack(settings: Settings, names: tuple[str, ...] = SERVICE_NAMES) -> list[str]:
    """Stop exactly the processes this stack started (pid files under the state folder)."""
    state = state_dir_of(settings)
    with state_lock(state):
        clients = stop_clients(state, (*SERVICE_NAMES, POSTGRES)) if names == SERVICE_NAMES else []
        return clients + stop_services(state, build_services_quietly(settings, names))


def build_services_quietly(settings: Settings, names: tuple[str, ...]) -> list[Service]:
    """Service descriptions for stopping/status, even when a server's binary is missing. A PostgreSQL
    server that runs (pid file) is included with the Prefect server even after TO_BIKES_PREFECT_DB changed."""
    if "prefect" in names and read_pid(state_dir_of(settings), POSTGRES) is not None:
        names = (POSTGRES, *(n for n in names if n != POSTGRES))
    try:
        return build_services(settings, names)
    except UserError:
        ports = {"s3": settings.s3_port, "prefect": settings.prefect_port, "mlflow": settings.mlflow_port}
        ports[POSTGRES] = settings.postgres_port
        return [Service(n, ports[n], settings.host, [], {}, "/") for n in names if n in ports]


def stack_status(settings: Settings, names: tuple[str, ...] = SERVICE_NAMES) -> list[ServiceState]:
    """The state of each named server: pid (if running) and whether it answers its health check."""
    state = state_dir_of(settings)
    result = []
    for service in build_services_quietly(settings, names):
        record = read_pid(state, service.name)
        running = record is not None and record.leader_alive()
        healthy = running and probe(service)
        result.append(ServiceState(service.name, service.url, record.pid if running else None, healthy))
    return result
