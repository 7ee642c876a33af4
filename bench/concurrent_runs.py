"""Many pipeline flow runs at once against a Prefect server on SQLite or on PostgreSQL (issue 18).

    agent/.venv/bin/python -m bench.concurrent_runs --db postgres --runs 10

Starts a throw-away stack (S3, MLflow, Prefect on ``--db``) in a temporary folder on free ports,
uploads three years of a small generated sample, deploys the project (blocks, code bundle on S3),
starts one process worker with ``--limit`` = the number of runs, submits every run at once (one
thread each) and waits for all of them. Prints one JSON line: final state per run, runs lost (created
here, unknown to the server when read back by id) or duplicated, wall seconds, runs per minute, the
lines of the Prefect server log that say "database is locked" (SQLite's message) or that a task-run
event was discarded, and on PostgreSQL the ERROR, FATAL and PANIC lines of the PostgreSQL server's own
log. Stops exactly what it started (the worker's process group, the stack's pid files) and removes the
folder. ``tests/orchestration/test_concurrent_runs.py`` asserts on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from models.core.cli import build_app, run_app
from models.core.settings import PROJECT_ROOT

PIPELINE = "to-bikes-pipeline/on-demand"
YEARS = ("2023", "2024", "2025")
LOCKED = "database is locked"
TIMEOUT_S = 1800.0
_PRIVATE = ("AWS_", "MLFLOW_", "PREFECT_", "TO_BIKES_")


def run_step(args: list[str], env: dict[str, str]) -> None:
    """One project command (as the Makefile runs it); its output in the error when it fails."""
    done = subprocess.run(args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:4])} exited {done.returncode}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


def upload_sample(env: Any, folder: Path, rows: int) -> None:
    """Three years of a generated sample under raw/ of the stack's bucket."""
    from models.sample.generate import generate_sample

    generate_sample(folder, seed=7, rows=rows)
    client = env.s3_client()
    with contextlib.suppress(Exception):
        client.create_bucket(Bucket=env.bucket)
    for year in YEARS:
        for path in sorted((folder / year).iterdir()):
            client.upload_file(str(path), env.bucket, f"raw/{year}/{path.name}")


def deploy(env: dict[str, str]) -> None:
    """``make blocks deploy`` with this environment (a dirty tree deploys its working copy)."""
    python = sys.executable
    prefect = str(Path(python).parent / "prefect")
    run_step([prefect, "--no-prompt", "block", "register", "-f", "orchestration/flows/config_block.py"], env)
    run_step([python, "-m", "orchestration", "blocks"], env)
    run_step([python, "-m", "orchestration", "deploy", "--allow-dirty"], env)


@contextlib.contextmanager
def worker(env: dict[str, str], settings: Any, limit: int) -> Iterator[None]:
    """One process worker (``--limit``) in a folder without code, in its own group; stopped with it."""
    from stack.worker import worker_command, worker_env, worker_home

    command = [*worker_command(settings.work_pool), "--limit", str(limit)]
    own_env = worker_env(settings)
    own_env |= env | {"PATH": own_env["PATH"]}  # the stack's variables; agent/.venv first on PATH
    with (settings.state_dir / "logs" / "worker.log").open("ab") as out:
        process = subprocess.Popen(
            command, env=own_env, cwd=worker_home(settings), stdout=out, stderr=out,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def deployed_stack(db: str, runs: int, rows: int) -> Iterator[dict[str, str]]:
    """A full stack on ``db``, the project deployed, a worker running ``runs`` flow runs at a time."""
    from stack.embedded import make_stack_env, running_stack

    folder = Path(tempfile.mkdtemp(prefix=f"to-bikes-{db}-"))
    folder.chmod(0o711)  # as root, PostgreSQL runs as the postgres account, which must enter it
    stack = make_stack_env(folder / "state", prefect_db=db)
    base = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE) and k != "PYTHONPATH"}
    env = {**base, **stack, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    try:
        with running_stack(stack):
            upload_sample(stack, folder / "sample", rows)
            deploy(env)
            with worker(env, stack.settings(), runs):
                yield env | {"TO_BIKES_STATE_DIR": str(stack.state_dir)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def wait_online(client: Any, pool: str) -> None:
    """Until the pool's worker reports itself online (bounded)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(str(w.status).upper().endswith("ONLINE") for w in client.read_workers_for_work_pool(pool)):
            return
        time.sleep(1)
    raise RuntimeError(f"no worker of pool {pool} came online")


def submit_and_wait(api_url: str, runs: int) -> dict[str, Any]:
    """``runs`` pipeline runs created at once (one thread each), then polled to their final states."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from orchestration.commands.runs import ApiCaller, start_run

    with SyncPrefectClient(api_url) as client:
        deployment = client.read_deployment_by_name(PIPELINE)
        wait_online(client, deployment.work_pool_name)

        def create(seed: int) -> Any:
            params = {"year": int(YEARS[-1]), "max_evals": 1, "seed": seed}
            # Prefect's settings context does not follow into a pool thread: each thread sets its own.
            with temporary_settings({PREFECT_API_URL: api_url}):
                return start_run(ApiCaller(api_url, say=print), PIPELINE, params).flow_run.id

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=runs) as pool:
            ids = list(pool.map(create, range(runs)))
        on_server = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        states = wait_all(api_url, [run.id for run in on_server], deployment.work_pool_name)
        seconds = time.monotonic() - started
        found = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        )
        started_runs = [run for run in found if run.state_name != "Scheduled"]  # not the cron's future runs
        failures = [run.state.message for run in started_runs if not run.state.is_completed()]
    return {
        "runs": runs,
        "states": dict(Counter(states.values())),
        "lost": len(set(ids) - {run.id for run in on_server}),
        "runs_on_server": len(started_runs),
        "duplicated": len(started_runs) - len(set(ids)),
        "failures": [str(message)[:300] for message in failures[:3]],
        "seconds": round(seconds, 1),
        "runs_per_minute": round(60 * runs / seconds, 2),
    }


def wait_all(api_url: str, ids: list[Any], pool: str) -> dict[Any, str]:
    """Final state name per flow run id the server has, each awaited with the commands' helper (one
    deadline for all; a run the server does not have is not here: ``lost`` counts it)."""
    from orchestration.commands.runs import ApiCaller, wait_final

    deadline = time.monotonic() + TIMEOUT_S
    caller = ApiCaller(api_url, say=lambda _: None)
    states: dict[Any, str] = {}
    for run_id in ids:
        state = wait_final(caller, run_id, pool, max(1.0, deadline - time.monotonic()))
        name = state.name if state is not None else "none"
        states[run_id] = name if state is not None and state.is_final() else f"not final: {name}"
    return states


def server_log_lines(state_dir: Path, marker: str) -> list[str]:
    """The Prefect server log's lines holding ``marker``."""
    text = (state_dir / "logs" / "prefect.log").read_text(errors="replace")
    return [line[:200] for line in text.splitlines() if marker in line]


def measure(db: str, runs: int, rows: int) -> dict[str, Any]:
    """The whole experiment on one database; the JSON this module prints."""
    from stack.postgres import DISCARDED_TASK_RUN_EVENT, log_problems

    with deployed_stack(db, runs, rows) as env:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):  # run_deployment's client
            result = submit_and_wait(env["PREFECT_API_URL"], runs)
        state = Path(env["TO_BIKES_STATE_DIR"])
        locked = server_log_lines(state, LOCKED)
        discarded = server_log_lines(state, DISCARDED_TASK_RUN_EVENT)
        problems = log_problems(state) if db == "postgres" else []
    return {
        "db": db,
        **result,
        "database_is_locked": len(locked),
        "locked_examples": locked[:3],
        "postgres_errors": len(problems),
        "postgres_error_examples": problems[:3],
        "task_run_events_discarded": len(discarded),
        "discarded_examples": discarded[:3],
    }


class Database(StrEnum):
    """The Prefect server's database under test."""

    SQLITE = "sqlite"
    POSTGRES = "postgres"


def concurrent_runs_command(
    db: Annotated[Database, typer.Option(help="the Prefect server's database")],
    runs: Annotated[int, typer.Option(help="flow runs submitted at once")] = 10,
    rows: Annotated[int, typer.Option(help="rows of the generated sample (all years)")] = 3000,
) -> int:
    """Many pipeline flow runs at once against a Prefect server on SQLite or on PostgreSQL."""
    print(json.dumps(measure(db.value, runs, rows)), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the one-command app on ``argv`` (default: the command line)."""
    app = build_app(__doc__.splitlines()[0], no_args_is_help=False)
    app.command()(concurrent_runs_command)
    return run_app(app, argv, prog_name="python -m bench.concurrent_runs")


if __name__ == "__main__":
    raise SystemExit(main())
