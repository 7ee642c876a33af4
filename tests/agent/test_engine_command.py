"""The deployments' flow-run command, agent/bin/to-bikes-engine: it waits for the Prefect API, then execs
``python -m prefect.engine`` (issue 30).

Here without a Prefect server: the give-up path (nobody listens; a 1 s bound), the handover once a server
answers ``<api>/health`` (a small HTTP server that fails every other path; the engine then refuses the
invalid flow run id, which shows it ran), and the local worker's PATH that finds the command. The outage
itself, with a real server and flow run, is ``tests/orchestration/test_engine_start_e2e.py``.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
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
