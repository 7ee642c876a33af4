"""``make score``: run the ``score`` deployment for one period, wait, print what it wrote and the figures.

    agent/.venv/bin/python -m orchestration.commands.score --year 2025 [--month 12]

The run is started and awaited by ``orchestration.commands.runs.start_and_wait`` (as for
``make run``); its ``result:`` line is the run's state message: whether it monitored the month itself
or found it "already scored by" an earlier run (the automation's, say), and whether the predictions were
cached. Once it Completed, the month's monitoring summary is read back from
``reports/<period>/monitoring.json`` and printed with the predictions' location and the verdict.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from models.core.errors import run_cli
from models.core.periods import format_period
from models.core.settings import load_settings
from orchestration.commands.run import DEFAULT_WAIT_S, check_prefect_api
from orchestration.commands.runs import print_now, start_and_wait
from orchestration.deploy.loop_automations import SCORE


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Year (required), month (optional), deployment and timeout."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.commands.score", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--year", type=int, required=True, help="year of the period (YEAR=)")
    parser.add_argument("--month", type=int, help="month of the period (MONTH=); none scores the year")
    parser.add_argument("--deployment", default=SCORE, help=f"flow/deployment (default {SCORE})")
    parser.add_argument(
        "--wait-seconds",
        "--timeout",
        dest="timeout",
        type=float,
        default=DEFAULT_WAIT_S,
        help=f"seconds to wait before leaving the run running (default {DEFAULT_WAIT_S:.0f})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, wait, then print the month's figures (exit 0 only when the run Completed)."""
    from models.scoring.history import describe_summary, read_summary
    from models.scoring.score import predictions_uri

    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parse_args(argv)
    settings = load_settings()
    check_prefect_api(settings)
    period = format_period(args.year, args.month)
    params = {"year": args.year, **({"month": args.month} if args.month else {})}
    completed, lines = start_and_wait(args.deployment, params, args.timeout)
    for line in lines:
        print_now(line)
    if not completed:
        return 1
    for line in describe_summary(read_summary(settings, period), predictions_uri(settings, period)):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
