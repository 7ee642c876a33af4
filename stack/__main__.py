"""``python -m stack up|down|status|logs|doctor|sync-data|env|check-prefect``: the local stack's CLI.

Run it with ``.venv/bin/python`` from the project root (the Makefile does). Exit codes: 0 ok,
2 a user error (one sentence on stderr), 3 ``status``/``doctor`` found something down.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence

from models.core.errors import run_cli
from models.core.secrets import mask_secrets
from models.core.settings import load_settings
from stack.control import stack_status, start_stack, stop_stack
from stack.processes import tail_log
from stack.services import SERVICE_NAMES, state_dir_of

EXIT_NOT_RUNNING = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("up", "start the servers and wait for health"), ("down", "stop the servers")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("services", nargs="*", metavar="SERVICE", help="s3, prefect, mlflow (default: all)")
    sub.add_parser("status", help="one line per server and one for the worker; exit 3 if a server is down")
    logs = sub.add_parser("logs", help="the last lines of each server's log")
    logs.add_argument("services", nargs="*", metavar="SERVICE", help="s3, prefect, mlflow (default: all)")
    logs.add_argument("-n", "--lines", type=int, default=40)
    sub.add_parser("doctor", help="check services, bucket, blocks and work pool; exit 3 on a failure")
    sync = sub.add_parser("sync-data", help="aws s3 sync a data folder to raw/ and verify its checksums")
    sync.add_argument("source", nargs="?", default="data/sample")
    sub.add_parser("env", help="print the settings as shell exports (never the secret)")
    sub.add_parser("check-prefect", help="exit 2 with one sentence unless the Prefect API answers")
    return parser


def show_status() -> int:
    """One line per server, then the worker's line (exit 3 only when a server is down)."""
    from stack.worker_status import describe_worker

    settings = load_settings()
    states = stack_status(settings)
    for state in states:
        print(state.describe())
    print(describe_worker(settings))
    return 0 if all(s.healthy for s in states) else EXIT_NOT_RUNNING


def show_logs(services: Sequence[str], lines: int) -> int:
    state = state_dir_of(load_settings())
    for name in services or SERVICE_NAMES:
        print(f"==> {state / 'logs' / (name + '.log')} <==")
        print(tail_log(state, name, lines) or "(no log yet)")
    return 0


def print_exports() -> int:
    """Shell exports of the non-secret settings, for scripts and the Makefile."""
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


def check_prefect_api() -> int:
    """Fail in one sentence before a Prefect command would fail with a traceback."""
    from stack.prefect_api import require_prefect_api

    require_prefect_api(load_settings())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        for state in start_stack(load_settings(), tuple(args.services) or SERVICE_NAMES):
            print(state.describe())
        return 0
    if args.command == "down":
        for line in stop_stack(load_settings(), tuple(args.services) or SERVICE_NAMES):
            print(line)
        return 0
    if args.command == "status":
        return show_status()
    if args.command == "logs":
        return show_logs(args.services, args.lines)
    if args.command == "doctor":
        from stack.doctor import run_doctor

        return run_doctor(load_settings())
    if args.command == "check-prefect":
        return check_prefect_api()
    if args.command == "sync-data":
        from stack.sync import sync_data

        return sync_data(load_settings(), args.source)
    return print_exports()


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
