"""``python -m orchestration``: one app with every make target's command; a user's mistake is one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from models.core.settings import PROJECT_ROOT
from orchestration.cli import main

pytestmark = pytest.mark.unit

COMMANDS = (
    "blocks",
    "deploy",
    "automations",
    "loop-automations",
    "notifications",
    "run",
    "backfill",
    "score",
    "champion",
    "months",
    "screenshots",
    "readme-blocks",
    "simulate-year",
    "soak",
    "stack",
    "worker",
)
STACK_COMMANDS = ("up", "down", "status", "logs", "doctor", "sync-data", "env", "check-prefect")
WORKER_COMMANDS = ("run", "start", "stop", "resume", "stacks", "status")


def listed_commands(capsys: pytest.CaptureFixture[str], *group: str) -> list[str]:
    """The command names ``--help`` of the app (or of a group) lists, in order."""
    assert main([*group, "--help"]) == 0
    listed = capsys.readouterr().out.split("Commands:", 1)[1]
    return [line.split()[0] for line in listed.splitlines() if line.startswith("  ")]


def run_orchestration(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``agent/.venv/bin/python -m orchestration ARGS`` as make runs it, without the caller's settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TO_BIKES_", "PREFECT_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-m", "orchestration", *args],
        cwd=PROJECT_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_help_lists_every_command_and_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert listed_commands(capsys) == list(COMMANDS)
    assert listed_commands(capsys, "stack") == list(STACK_COMMANDS)
    assert listed_commands(capsys, "worker") == list(WORKER_COMMANDS)


def test_the_app_loads_no_prefect_until_a_command_needs_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, orchestration.cli; print('prefect' in sys.modules)"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"  # `make up` and `--help` stay Prefect-free


def test_a_dead_prefect_api_is_one_error_line_and_exit_2() -> None:
    done = run_orchestration("run", TO_BIKES_PREFECT_PORT=str(closed_port()))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: The Prefect API at "), done.stderr


def test_a_bad_setting_is_one_error_line_and_exit_2() -> None:
    done = run_orchestration("stack", "status", TO_BIKES_S3_PORT="notaport")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "TO_BIKES_S3_PORT" in lines[0], lines
    assert "Traceback" not in done.stderr and "notaport" not in lines[0]


def test_a_usage_mistake_exits_2_with_the_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backfill", "--from", "2025-01"]) == 2
    err = capsys.readouterr().err
    assert "Usage: python -m orchestration backfill" in err and "Missing option '--to'" in err


def test_a_prefect_setting_prefect_refuses_ends_in_one_error_line_and_exit_2() -> None:
    done = run_orchestration("blocks", PREFECT_API_REQUEST_TIMEOUT="abc")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "'abc'" not in done.stderr.splitlines()[-1]
    assert done.stderr.splitlines()[-1].startswith("error: APISettings setting 'request_timeout' is invalid")
