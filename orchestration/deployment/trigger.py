"""``make run`` / ``make backfill``: start deployment runs over the API and wait for them.

    agent/.venv/bin/python -m orchestration.deployment.trigger run [--deployment NAME] [--param key=value ...]
    agent/.venv/bin/python -m orchestration.deployment.trigger backfill --from 2024-01 --to 2024-06

``run`` prints the flow run's URL at once, waits (bounded by ``--timeout``) and exits 0 only when the
run is Completed. ``backfill`` starts one run per month, one after another, and exits 0 only when
every month Completed. Both refuse to start when no worker of the pool is online, instead of leaving
a run Late in a queue that nobody polls.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from models.core.errors import UserError, run_cli
from models.core.settings import load_settings
from stack.doctor import require_prefect_api as check_prefect_api

PIPELINE = "to-bikes-pipeline/weekly"
PREPROCESS = "preprocess/daily"
DEFAULT_TIMEOUT_S = 1800.0
POLL_S = 1.0
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value is read as JSON when it parses (``year=2025`` is the int 2025)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--param {pair!r} is not key=value.")
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text
    return params


def month_range(first: str, last: str) -> list[tuple[int, int]]:
    """Every (year, month) from ``first`` to ``last`` inclusive, both ``YYYY-MM``."""
    bounds = []
    for name, text in (("FROM", first), ("TO", last)):
        match = MONTH.match(text or "")
        if not match:
            raise UserError(f"{name}={text!r} is not a month like 2024-01.")
        bounds.append(int(match[1]) * 12 + int(match[2]) - 1)
    if bounds[0] > bounds[1]:
        raise UserError(f"FROM={first} is after TO={last}.")
    return [(key // 12, key % 12 + 1) for key in range(bounds[0], bounds[1] + 1)]


def check_worker_online(client: Any, deployment: Any) -> None:
    """Fail in one sentence when no worker of the deployment's pool is online."""
    pool = deployment.work_pool_name
    workers = client.read_workers_for_work_pool(pool)
    if not any(str(getattr(w.status, "value", w.status)).upper() == "ONLINE" for w in workers):
        raise UserError(
            f"no worker polls work pool {pool!r}; start one with `make agent` in another terminal."
        )


def flow_run_url(flow_run_id: Any) -> str:
    """The run's page in the Prefect UI."""
    from prefect.settings import PREFECT_UI_URL

    return f"{PREFECT_UI_URL.value()}/runs/flow-run/{flow_run_id}"


def wait_final(client: Any, flow_run_id: Any, timeout_s: float) -> Any:
    """Poll the run until it reaches a final state (or the timeout); returns the last state."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = client.read_flow_run(flow_run_id).state
        if state is not None and state.is_final():
            return state
        if time.monotonic() > deadline:
            return state
        time.sleep(POLL_S)


def run_deployment_once(name: str, params: dict[str, Any], timeout_s: float) -> tuple[bool, str]:
    """Create one run, wait for it; ``(completed, one-line report)``."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound as exc:
            raise UserError(f"deployment {name!r} does not exist on this API; run `make deploy`.") from exc
        check_worker_online(client, deployment)
        started = time.monotonic()
        flow_run = client.create_flow_run_from_deployment(deployment.id, parameters=params)
        print(f"{name} {json.dumps(params, sort_keys=True)}: {flow_run_url(flow_run.id)}", flush=True)
        state = wait_final(client, flow_run.id, timeout_s)
    seconds = time.monotonic() - started
    label = state.name if state is not None else "unknown"
    if state is None or not state.is_final():
        return False, f"{flow_run.name}: still {label} after {seconds:.0f} s (timeout)"
    return state.is_completed(), f"{flow_run.name}: {label} in {seconds:.1f} s (trigger to final state)"


def run_command(args: argparse.Namespace) -> int:
    """``run``: one run of a deployment."""
    completed, report = run_deployment_once(args.deployment, parse_params(args.param), args.timeout)
    print(report)
    return 0 if completed else 1


def backfill_command(args: argparse.Namespace) -> int:
    """``backfill``: one Dask backfill run (``backfill_run``), or with ``--per-month`` one run per month."""
    if not args.per_month:
        from orchestration.deployment.backfill_run import period_range, run_backfill

        completed, report = run_backfill(
            period_range(args.first, args.last), parse_params(args.param), args.timeout
        )
        print(report)
        return 0 if completed else 1
    months = month_range(args.first, args.last)
    extra = parse_params(args.param)
    failed = 0
    for year, month in months:
        completed, report = run_deployment_once(
            args.deployment, {**extra, "year": year, "month": month}, args.timeout
        )
        print(f"{year}-{month:02d}: {report}", flush=True)
        failed += not completed
    print(f"backfill {args.first}..{args.last}: {len(months) - failed} of {len(months)} month(s) Completed")
    return 0 if failed == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    """``run`` and ``backfill`` sub-commands."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.deployment.trigger", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="one run of a deployment; exit 0 only if it Completed")
    run.add_argument("--deployment", default=PIPELINE, help=f"flow/deployment (default {PIPELINE})")
    backfill = sub.add_parser("backfill", help="periods FROM..TO in one run on Dask (or one run per month)")
    backfill.add_argument("--from", dest="first", required=True, help="first month YYYY-MM (or year)")
    backfill.add_argument("--to", dest="last", required=True, help="last month YYYY-MM (or year)")
    backfill.add_argument("--per-month", action="store_true", help=f"one {PREPROCESS} run per month instead")
    backfill.add_argument("--deployment", default=PREPROCESS, help=f"flow/deployment (default {PREPROCESS})")
    for command in (run, backfill):
        command.add_argument(
            "--param", action="append", default=[], help="key=value (JSON value), repeatable"
        )
        command.add_argument(
            "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait per run"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to ``run`` or ``backfill``."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    check_prefect_api(load_settings())  # a malformed .env or a dead API fails here, in one sentence
    return run_command(args) if args.command == "run" else backfill_command(args)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
