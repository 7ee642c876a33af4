"""The background worker's start and stop: a graceful stop even from a background job, no leftover.

A job started in the background by a non-interactive shell (``cmd &``, nohup, a CI step) ignores
SIGINT, and the ignore survives exec. Prefect's worker answers SIGTERM by sending itself SIGINT; with
SIGINT still ignored it never stopped, and ``stop`` had to wait out its timeout and SIGKILL it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from models.core.settings import PROJECT_ROOT
from stack.embedded import StackEnv
from tests.orchestration.e2e import clean_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def worker(env: dict[str, str], action: str) -> subprocess.CompletedProcess[str]:
    """``python -m orchestration worker ACTION`` as a background job runs it (SIGINT ignored)."""
    return subprocess.run(
        [sys.executable, "-m", "orchestration", "worker", action],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=ignore_sigint,
    )


def test_stop_ends_a_worker_started_with_sigint_ignored_without_sigkill(
    local_stack: StackEnv, tmp_path: Path
) -> None:
    env = clean_env(local_stack, TO_BIKES_STATE_DIR=str(tmp_path / "state"))
    started = worker(env, "start")
    assert started.returncode == 0, started.stdout + started.stderr
    stopped = worker(env, "stop")
    assert stopped.returncode == 0 and "worker stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    assert "SIGKILL" not in stopped.stderr, stopped.stderr
    log = (tmp_path / "state" / "logs" / "worker.log").read_text(errors="replace")
    assert "stopped!" in log.split("started!")[-1], log[-2000:]  # its own graceful end, after its start


def test_a_bad_prefect_setting_is_one_sentence_and_exit_2(local_stack: StackEnv, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = clean_env(local_stack, TO_BIKES_STATE_DIR=str(state), PREFECT_WORKER_QUERY_SECONDS="not-a-number")
    started = worker(env, "start")
    assert started.returncode == 2, started.stdout + started.stderr
    assert "WorkerSettings setting 'query_seconds' is invalid" in started.stderr, started.stderr
    assert "Traceback" not in started.stderr, started.stderr


def test_a_worker_that_exits_at_start_is_one_sentence_and_is_not_left_recorded(
    local_stack: StackEnv, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = clean_env(local_stack, TO_BIKES_STATE_DIR=str(state), TO_BIKES_WORK_POOL="no/such pool")
    started = worker(env, "start")
    assert started.returncode == 2, started.stdout + started.stderr
    assert "the worker exited at start" in started.stderr, started.stderr
    assert not (state / "run" / "worker.pid").exists()
