"""The deployments' flow-run command, agent/bin/to-bikes-engine: it waits for the Prefect API, then runs
``prefect.engine`` in its process, Prefect's clients retrying a refused connection from the start (issue 30).

Here without a Prefect server: the give-up path (nobody listens; a 1 s bound), the handover once a server
answers ``<api>/health`` (a small HTTP server that fails every other path; the engine then refuses the
invalid flow run id, which shows it ran), and the local worker's PATH that finds the command. The outage
itself, with a real server and flow run, is ``tests/orchestration/test_engine_start_e2e.py``.
"""

from __future__ import annotations

import http.server
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.core.settings import PROJECT_ROOT
from orchestration.flows.api_loss import EXIT_API_LOST
from stack.embedded import free_ports

COMMAND = PROJECT_ROOT / "agent" / "bin" / "to-bikes-engine"
TIMEOUT_S = 120  # the handover imports Prefect: a few seconds on a loaded machine


def run_command(api_url: str, cwd: Path, wait_s: str, run_id: str = "run-1") -> subprocess.CompletedProcess:
    """The command as a worker starts it: by name on PATH, this venv's python first."""
    path = f"{Path(sys.executable).parent}:{COMMAND.parent}:/usr/bin:/bin"
    env = {
        "PATH": path,
        "PREFECT_API_URL": api_url,
        "TO_BIKES_API_WAIT_SECONDS": wait_s,
        "PREFECT__FLOW_RUN_ID": run_id,
        "PREFECT_HOME": str(cwd / "home"),
    }
    return subprocess.run(
        ["to-bikes-engine"], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


class HealthOnly(http.server.BaseHTTPRequestHandler):
    """200 on /api/health; 503 (an outage, for the command) on every other path."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/api/health" else 503)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def health_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HealthOnly)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.unit
def test_an_api_that_never_answers_ends_the_command_in_one_sentence(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    api = f"http://127.0.0.1:{port}/api"
    done = run_command(api, tmp_path, wait_s="1", run_id="1b2c")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == EXIT_API_LOST, done
    assert done.stdout == "" and len(lines) == 1 and "Traceback" not in done.stderr, done
    assert lines[0].startswith(f"to-bikes-engine: the Prefect API did not answer at {api}/health for 1 s")
    assert "flow run 1b2c was not started" in lines[0] and lines[0].endswith("."), lines


@pytest.mark.unit
def test_a_bad_wait_setting_is_named(tmp_path: Path) -> None:
    done = run_command("http://127.0.0.1:9/api", tmp_path, wait_s="soon")
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.strip() == (
        "to-bikes-engine: TO_BIKES_API_WAIT_SECONDS='soon' is not a number of seconds "
        "(make deploy sets it in the job env)."
    )


@pytest.mark.integration
def test_once_the_api_health_answers_the_command_becomes_the_engine(
    health_server: str, tmp_path: Path
) -> None:
    done = run_command(health_server, tmp_path, wait_s="5", run_id="not-a-uuid")
    # Prefect's engine itself read the id (exec: the same process, so the same exit code and output).
    assert "Invalid flow run id" in done.stdout + done.stderr, done
    assert done.returncode == 1 and "did not answer" not in done.stderr, done


@pytest.mark.unit
def test_the_local_worker_finds_the_command_and_its_python(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.core.settings import load_settings
    from stack.worker import worker_env

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    path = worker_env(load_settings())["PATH"]
    assert shutil.which("to-bikes-engine", path=path) == str(COMMAND)
    assert shutil.which("python3", path=path) == str(Path(sys.executable).parent / "python3")


CLIENT_DURING_OUTAGE = """
import importlib.util, sys, threading, time, http.server
from importlib.machinery import SourceFileLoader
loader = SourceFileLoader("to_bikes_engine", sys.argv[1])
engine = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
loader.exec_module(engine)
if sys.argv[3] == "patched":
    engine.patch_clients()
from prefect.client import base
from prefect.client.orchestration import get_client

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(b"true")
    def log_message(self, *args):
        pass

def serve_later():
    time.sleep(3)  # the server comes back while the client retries
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Health).serve_forever()

threading.Thread(target=serve_later, daemon=True).start()
print("flag", hasattr(base.PrefectHttpxSyncClient(base_url="http://127.0.0.1:1"), engine.CONNECTED_FLAG))
with get_client(sync_client=True) as client:
    print("health", type(client.api_healthcheck()).__name__)
"""


@pytest.mark.parametrize(
    ("mode", "expected"), [("patched", "health NoneType"), ("prefect's own", "ConnectError")]
)
def test_a_client_made_during_an_outage_waits_for_the_server_with_the_commands_patch(
    tmp_path: Path, mode: str, expected: str
) -> None:
    """Found by ``make soak``: the engine's clients made after the pull failed at once on a restarting server.

    With the patch a fresh client waits out a 3 s outage (Prefect's retries); without it, it fails at once.
    The first line fails loudly when Prefect renames the private flag the patch sets (README "Private APIs").
    """
    port = free_ports(1)[0]
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_HOME": str(tmp_path / "home"),
        "PREFECT_CLIENT_MAX_RETRIES": "4",
    }
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_DURING_OUTAGE, str(COMMAND), str(port), mode],
        env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    print(done.stdout, done.stderr[-2000:])
    assert done.stdout.startswith("flag True"), "Prefect's client has no _has_connected: see the README"
    assert expected in done.stdout, done.stdout


@pytest.mark.integration
def test_sigusr1_writes_every_threads_stack_and_the_command_goes_on(tmp_path: Path) -> None:
    """``make worker-stacks``' signal: the command (here waiting for an API that never answers) writes where
    each thread is to stderr, the worker's log, and keeps waiting; SIGTERM then ends it."""
    from stack.worker import STACKS_SIGNAL, catches_signal

    (port,) = free_ports(1)
    env = {
        "PATH": f"{Path(sys.executable).parent}:{COMMAND.parent}:/usr/bin:/bin",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "TO_BIKES_API_WAIT_SECONDS": "600",
        "PREFECT__FLOW_RUN_ID": "run-1",
    }
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as err:
        process = subprocess.Popen(["to-bikes-engine"], cwd=tmp_path, env=env, stdout=err, stderr=err)
    try:
        for _ in range(600):  # the handler is in place once the interpreter has run main's first line
            if catches_signal(process.pid, STACKS_SIGNAL) or process.poll() is not None:
                break
            time.sleep(0.1)
        assert catches_signal(process.pid, STACKS_SIGNAL), stderr.read_text()
        process.send_signal(STACKS_SIGNAL)
        for _ in range(100):
            if "most recent call first" in stderr.read_text():
                break
            time.sleep(0.1)
        assert process.poll() is None, stderr.read_text()  # still waiting for the API
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT_S)
    written = stderr.read_text()
    assert "most recent call first" in written and "in wait_for_api" in written, written
    assert process.returncode == -signal.SIGTERM, written
