"""Helpers of the stack tests: run the project's commands as the Makefile does, with a stack's env."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from models.core.settings import PROJECT_ROOT

AGENT_BIN = PROJECT_ROOT / "agent" / ".venv" / "bin"
COMMAND_TIMEOUT_S = 300
LOOPBACK_V4 = "127.0.0.1"


def run_command(
    args: Sequence[str | Path], env: dict[str, str], extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a project command with the stack's environment, from its state folder (so no .env is read)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TO_BIKES_", "AWS_", "PREFECT_"))}
    full_env |= {"PYTHONPATH": str(PROJECT_ROOT)} | env | (extra or {})
    return subprocess.run(
        [str(a) for a in args],
        cwd=env["TO_BIKES_STATE_DIR"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def run_stack_cli(
    env: dict[str, str], *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``agent/.venv/bin/python -m orchestration stack ARGS`` as the Makefile runs it."""
    return run_command([AGENT_BIN / "python", "-m", "orchestration", "stack", *args], env, extra)


def run_make_blocks(
    env: dict[str, str], extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The two commands of ``make blocks`` (without make, so no developer .env leaks in)."""
    blocks_file = PROJECT_ROOT / "orchestration" / "flows" / "config_block.py"
    command = [AGENT_BIN / "prefect", "--no-prompt", "block", "register", "-f", blocks_file]
    register = run_command(command, env, extra)
    assert register.returncode == 0, register.stdout + register.stderr
    return run_command([AGENT_BIN / "python", "-m", "orchestration", "blocks"], env, extra)


def listening_addresses(pids: list[int]) -> set[tuple[str, int]]:
    """(local address, port) of every TCP socket in LISTEN state owned by these processes (psutil)."""
    import psutil

    found = set()
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            for conn in psutil.Process(pid).net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((conn.laddr.ip, conn.laddr.port))
    return found
