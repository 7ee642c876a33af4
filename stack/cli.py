"""The local stack's commands: Typer sub-apps ``python -m orchestration`` mounts as ``stack`` and ``worker``.

    agent/.venv/bin/python -m orchestration stack up|down|status|logs|doctor|sync-data|env|check-prefect
    agent/.venv/bin/python -m orchestration worker run|start|stop|resume|status|stacks

Exit codes: 0 ok, 2 a user error (one sentence on stderr), 3 ``status``/``doctor`` found something
down. Nothing here imports ``orchestration``: the apps are built here and mounted there.
"""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from models.core.cli import build_app
from models.core.secrets import mask_secrets
from models.core.settings import load_settings
from stack.services import SERVICE_NAMES, state_dir_of

EXIT_NOT_RUNNING = 3

stack_app = build_app("The local stack on 127.0.0.1: Prefect server, S3 (s3rver), MLflow server.")
worker_app = build_app("The project's worker for the selected pool type (TO_BIKES_WORK_POOL_TYPE).")

Services = Annotated[
    list[str] | None,
    typer.Argument(metavar="SERVICE", help="s3, prefect, mlflow (default: all)", show_default=False),
]


@stack_app.command("up")
def up_command(services: Services = None) -> int:
    """Start the servers and wait for health."""
    from stack.control import start_stack

    for state in start_stack(load_settings(), tuple(services or ()) or SERVICE_NAMES):
        print(state.describe())
    return 0


@stack_app.command("down")
def down_command(services: Services = None) -> int:
    """Stop the servers."""
    from stack.control import stop_stack

    for line in stop_stack(load_settings(), tuple(services or ()) or SERVICE_NAMES):
        print(line)
    return 0


@stack_app.command("status")
def status_command() -> int:
    """One line per server and one for the worker; exit 3 if a server is down."""
    from stack.control import stack_status
    from stack.worker_status import describe_worker

    settings = load_settings()
    states = stack_status(settings)
    for state in states:
        print(state.describe())
    print(describe_worker(settings))
    return 0 if all(s.healthy for s in states) else EXIT_NOT_RUNNING


@stack_app.command("logs")
def logs_command(
    services: Services = None,
    lines: Annotated[int, typer.Option("-n", "--lines", help="lines per log")] = 40,
) -> int:
    """The last lines of each server's log."""
    from stack.processes import tail_log

    state = state_dir_of(load_settings())
    for name in services or SERVICE_NAMES:
        print(f"==> {state / 'logs' / (name + '.log')} <==")
        print(tail_log(state, name, lines) or "(no log yet)")
    return 0


@stack_app.command("doctor")
def doctor_command() -> int:
    """Check services, bucket, blocks and work pool; exit 3 on a failure."""
    from stack.doctor import run_doctor

    return run_doctor(load_settings())


@stack_app.command("sync-data")
def sync_data_command(
    source: Annotated[str, typer.Argument(help="the folder to upload")] = "data/sample",
) -> int:
    """aws s3 sync a data folder to raw/ and verify its checksums."""
    from stack.sync import sync_data

    return sync_data(load_settings(), source)


@stack_app.command("env")
def env_command() -> int:
    """Print the settings as shell exports (never the secret)."""
    settings = load_settings()
    values = {
        "TO_BIKES_STATE_DIR": str(state_dir_of(settings)),
        "TO_BIKES_BUCKET": settings.bucket,
        "TO_BIKES_S3_ENDPOINT_URL": settings.s3_endpoint or "",
        "PREFECT_API_URL": settings.prefect_api_url,
        "MLFLOW_TRACKING_URI": mask_secrets(settings.mlflow_tracking_uri),
        "AWS_DEFAULT_REGION": settings.aws_region,
    }
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


@stack_app.command("check-prefect")
def check_prefect_command() -> int:
    """Exit 2 with one sentence unless the Prefect API answers."""
    from stack.prefect_api import require_prefect_api

    require_prefect_api(load_settings())
    return 0


def worker_action(action: str) -> int:
    """Run one of ``stack.worker``'s actions (imported here: it reads prefect.yaml's pool spec)."""
    from stack.worker import run_worker_action

    return run_worker_action(action)


@worker_app.command("run")
def worker_run_command() -> int:
    """Run the worker in the foreground (make agent); Ctrl-C stops it."""
    return worker_action("run")


@worker_app.command("start")
def worker_start_command() -> int:
    """Start a background worker with a pid file (make demo); a live one is left running."""
    return worker_action("start")


@worker_app.command("stop")
def worker_stop_command() -> int:
    """Stop the background worker named by the pid file, and forget that it was wanted."""
    return worker_action("stop")


@worker_app.command("resume")
def worker_resume_command() -> int:
    """Start the background worker again if make demo had started one (make up)."""
    return worker_action("resume")


@worker_app.command("stacks")
def worker_stacks_command() -> int:
    """Each flow run of the background worker writes its threads' stacks to the worker's log."""
    return worker_action("stacks")


@worker_app.command("status")
def worker_status_command() -> int:
    """One line: the pool's workers (online/stale/offline) and the background worker's pid."""
    from stack.worker_status import describe_worker

    print(describe_worker(load_settings()))
    return 0
