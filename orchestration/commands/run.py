"""``make run`` / ``make backfill``: start deployment runs over the API and wait for them.

    agent/.venv/bin/python -m orchestration.commands.run run [--deployment NAME] [--param key=value ...]
    agent/.venv/bin/python -m orchestration.commands.run backfill --from 2024-01 --to 2024-06

``run`` checks the parameters before a run exists (one sentence, exit 2), prints the flow run's URL,
then one line whenever what it waits for changes (no worker polling the pool, or the run's state),
waits up to ``--wait-seconds`` (default ten minutes; then it says the run goes on, with its URL) and
exits 0 only when the run is Completed. A failed run's own reason is printed; a completed pipeline
run's rows, headline metrics and gate decision (``orchestration.commands.outcome``). ``backfill``
starts one run per month, one after another, and exits 0 only when every month Completed. An API
outage of up to three minutes is waited out (``orchestration.commands.runs``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from models.core.errors import UserError, run_cli
from models.core.periods import format_period, month_range
from models.core.settings import load_settings
from orchestration.commands import runs
from orchestration.commands.backfill import period_range, run_backfill
from orchestration.commands.runs import print_now
from stack.prefect_api import require_prefect_api as check_prefect_api

PIPELINE = "to-bikes-pipeline/weekly"
PREPROCESS = "preprocess/daily"
DEFAULT_WAIT_S = 600.0  # ten minutes: a demo-sized run takes one or two


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


def check_params(params: dict[str, Any], deployment: Any) -> None:
    """Refuse, in one sentence and before any run exists, parameters the flow would reject.

    ``year`` and ``month`` are read by ``models.core.periods.format_period`` (the flow's own check);
    every parameter is then checked against the deployment's parameter schema with Prefect's own
    validator, the check the server makes (a 409 Conflict) when a run is created.
    """
    from prefect.utilities.schema_tools import ValidationError, validate

    if params.get("year") is not None:
        format_period(params["year"], params.get("month"))
    elif params.get("month") is not None:
        format_period("2000", params["month"])  # no year: the latest one; the month must still be one
    schema = deployment.parameter_openapi_schema or {}
    known = schema.get("properties", {})
    unknown = sorted(set(params) - set(known))
    if known and unknown:
        raise UserError(
            f"Parameter {unknown[0]!r} is not one of {deployment.name!r}'s: {', '.join(sorted(known))}."
        )
    try:
        validate(params, schema, raise_on_error=True)
    except ValidationError as exc:
        raise UserError(f"Parameters {json.dumps(params, sort_keys=True)} are refused: {exc}") from exc


def run_deployment_once(name: str, params: dict[str, Any], timeout_s: float) -> tuple[bool, list[str]]:
    """Check the parameters, start one run and wait for it (``runs.start_and_wait``)."""
    return runs.start_and_wait(name, params, timeout_s, check=check_params)


def run_command(args: argparse.Namespace) -> int:
    """``run``: one run of a deployment."""
    completed, lines = run_deployment_once(args.deployment, parse_params(args.param), args.wait_seconds)
    for line in lines:
        print_now(line)
    return 0 if completed else 1


def backfill_command(args: argparse.Namespace) -> int:
    """``backfill``: one Dask backfill run (``backfill_run``), or with ``--per-month`` one run per month."""
    if not args.per_month:
        completed, report = run_backfill(
            period_range(args.first, args.last), parse_params(args.param), args.wait_seconds
        )
        print(report)
        return 0 if completed else 1
    months = month_range(args.first, args.last)
    extra = parse_params(args.param)
    failed = 0
    for month in months:
        completed, lines = run_deployment_once(
            args.deployment, {**extra, "year": int(month[:4]), "month": int(month[5:])}, args.wait_seconds
        )
        print_now(f"{month}: {' | '.join(lines)}")
        failed += not completed
    print(f"backfill {args.first}..{args.last}: {len(months) - failed} of {len(months)} month(s) Completed")
    return 0 if failed == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    """``run`` and ``backfill`` sub-commands."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.commands.run", description=__doc__.splitlines()[0]
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
            "--wait-seconds",
            "--timeout",
            dest="wait_seconds",
            type=float,
            default=DEFAULT_WAIT_S,
            help=f"seconds to wait per run before leaving it running (default {DEFAULT_WAIT_S:.0f})",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to ``run`` or ``backfill``."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    settings = load_settings()
    check_prefect_api(settings)  # a malformed .env or a dead API fails here, in one sentence
    # Prefect's client uses the configured API, never a throw-away local server.
    os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url)
    return run_command(args) if args.command == "run" else backfill_command(args)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
